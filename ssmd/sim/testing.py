"""Test helpers for code that talks to the simulator (shipped as API, so later test suites share them).

:class:`SimClient` is a signed WebSocket client that sends JSON commands with fresh ids and reads frames
as dicts with timeouts; :func:`test_config` is a :class:`SimConfig` suited to deterministic tests (no
order flow until ``Simulator.step``, ground truth in memory, slow heartbeats).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from ssmd.sim.config import FaultConfig, SimConfig
from ssmd.sim.simulator import Simulator

RECV_TIMEOUT = 5.0


class SimClient:
    """A WebSocket client speaking Kalshi's JSON commands; every read has a timeout."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 1

    @classmethod
    async def connect(cls, sim: Simulator, **kwargs: Any) -> SimClient:
        """Open a connection signed with the simulator's generated key."""
        if sim.client_key is None:
            msg = "the simulator has registered keys only; sign with your own key"
            raise ValueError(msg)
        return cls(await connect(sim.ws_url, additional_headers=sim.client_key.headers(), **kwargs))

    async def close(self) -> None:
        await self.ws.close()

    async def send(self, cmd: str, params: dict[str, Any] | None = None, **extra: Any) -> int:
        """Send a command with a fresh id (``extra`` goes to the top level); returns the id."""
        cmd_id = self.next_id
        self.next_id += 1
        body: dict[str, Any] = {"id": cmd_id, "cmd": cmd, **extra}
        if params is not None:
            body["params"] = params
        await self.ws.send(json.dumps(body))
        return cmd_id

    async def recv(self, within: float = RECV_TIMEOUT) -> dict[str, Any]:
        """The next frame as a dict; ``TimeoutError`` if none arrives ``within`` seconds."""
        frame = await asyncio.wait_for(self.ws.recv(), within)
        if not isinstance(frame, str):
            msg = f"expected a JSON text frame, got {len(frame)} binary bytes"
            raise TypeError(msg)
        result: dict[str, Any] = json.loads(frame)
        return result

    async def recv_n(self, n: int) -> list[dict[str, Any]]:
        return [await self.recv() for _ in range(n)]

    async def drain(self, quiet: float = 0.2) -> list[dict[str, Any]]:
        """Every frame that arrives until none comes for ``quiet`` seconds."""
        frames = []
        while True:
            try:
                frames.append(await self.recv(within=quiet))
            except TimeoutError:
                return frames

    async def subscribe(self, channels: list[str], **params: Any) -> list[dict[str, Any]]:
        """Subscribe and return the reply frames (``subscribed``/``ok`` and snapshots)."""
        await self.send("subscribe", {"channels": channels, **params})
        return await self.drain()


def test_config(**overrides: Any) -> SimConfig:
    """12 markets, seed 3, frozen order flow (rate 0), ground truth in memory, 30 s heartbeats."""
    faults = overrides.pop("faults", FaultConfig())
    base: dict[str, Any] = {"markets": 12, "rate": 0, "seed": 3, "record": True, "heartbeat_s": 30.0}
    base.update(overrides)
    return SimConfig(faults=faults, **base)


test_config.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name
