"""Connecting to NATS from a settings URL, failing fast and clearly when no server answers.

nats-py retries the initial connect according to its reconnect settings and logs every failed attempt
with a traceback through its default error callback; a CLI must instead say once that the server is
unreachable. :func:`connect` parses Faust-style server lists (``nats://a:4222;b:4222``), silences the
per-attempt callback during the initial connect, and raises :class:`~ssmd.errors.ServerError`.
"""

from __future__ import annotations

import logging
from typing import Any

from ssmd.errors import ServerError

log = logging.getLogger(__name__)


def server_list(url: str) -> list[str]:
    """``'nats://a:4222;b:4222'`` (or ``,``-separated, scheme optional) -> ``['nats://a:4222', 'nats://b:4222']``."""
    parts = [p.strip() for p in url.replace(",", ";").split(";") if p.strip()]
    return [p if "://" in p else f"nats://{p}" for p in parts]


async def connect(url: str, *, connect_timeout: float = 3.0, **options: Any) -> Any:
    """A connected ``nats.aio.client.Client``, or :class:`ServerError` if no listed server answers."""
    import nats

    attempts: list[BaseException] = []

    async def on_error(e: Exception) -> None:
        attempts.append(e)
        if connected:
            log.warning("nats: %s", e)

    connected = False
    # nats-py applies max_reconnect_attempts to the initial connect too: with its default (60) an
    # unreachable server means minutes of retries. One pass over the list is the default here; a
    # long-running service that prefers to wait passes its own value.
    options.setdefault("max_reconnect_attempts", 1)
    try:
        nc = await nats.connect(servers=server_list(url), connect_timeout=connect_timeout, error_cb=on_error, **options)
    except Exception as e:
        cause = attempts[-1] if attempts else e
        msg = f"cannot reach NATS at {url}: {cause or type(cause).__name__}"
        raise ServerError(msg) from None
    connected = True
    return nc
