"""ssmd's Kalshi exchange simulator: the same WebSocket and REST protocol, offline.

- :mod:`~ssmd.sim.config`: :class:`SimConfig` and fault settings (from the CLI or tests);
- :mod:`~ssmd.sim.universe`, :mod:`~ssmd.sim.book`, :mod:`~ssmd.sim.model`: series, events, markets,
  books and a deterministic order flow (a seed fixes every message's content);
- :mod:`~ssmd.sim.render`: message bodies in the current (fixed-point) or legacy (cents) wire format;
- :mod:`~ssmd.sim.session`, :mod:`~ssmd.sim.params`: one WebSocket connection: commands (validated to
  Kalshi's error codes), subscriptions, ``seq`` per sid;
- :mod:`~ssmd.sim.server`: the one port serving the WebSocket upgrade (RSA-PSS checked) and REST;
- :mod:`~ssmd.sim.rest`, :mod:`~ssmd.sim.objects`: the REST market-data endpoints and their objects;
- :mod:`~ssmd.sim.faults`: switchable faults, by probability (CLI) or one-shot (tests);
- :mod:`~ssmd.sim.groundtruth`: what was sent to whom and every book after every change;
- :mod:`~ssmd.sim.simulator`: :class:`Simulator`, the async context manager tying them together;
- :mod:`~ssmd.sim.testing`: a signed test client and a deterministic test configuration.

It shares :mod:`ssmd.kalshi`'s protocol constants and types with the connector, never its code paths.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FaultConfig", "SimConfig", "Simulator"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing one submodule (e.g. the model in a benchmark) does not start the server stack.
    if name == "Simulator":
        from ssmd.sim.simulator import Simulator

        return Simulator
    if name in ("FaultConfig", "SimConfig"):
        from ssmd.sim import config

        return getattr(config, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
