"""Opening the NATS connection of a consumer or producer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import socket

from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from ssmd.errors import ServerError

from .options import NatsOptions

log = logging.getLogger(__name__)

#: Errors that mean "NATS is unreachable or restarting", worth retrying; a ``TopicMismatchError``
#: or another ``ConfigError`` is not among them.
NATS_ERRORS: tuple[type[BaseException], ...] = (NatsError, TimeoutError, OSError)


async def connect(opts: NatsOptions, role: str) -> NATS:
    """Connect with endless reconnects; a first connection failure is a :class:`ServerError`."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats (%s): %r", role, exc)

    async def on_disconnect() -> None:
        log.warning("nats (%s): disconnected; reconnecting", role)

    async def on_reconnect() -> None:
        log.info("nats (%s): reconnected", role)

    kw = opts.connect_kwargs()
    kw["name"] = f"{kw.get('name') or 'ssmd'}-{role}"
    nc = NATS()
    try:
        # Reconnects are endless once connected; the first connection gets a deadline so a wrong
        # URL or a down cluster is an error, not a silent retry loop.
        await asyncio.wait_for(nc.connect(error_cb=on_error, disconnected_cb=on_disconnect,
                                          reconnected_cb=on_reconnect, allow_reconnect=True, **kw),
                               timeout=opts.connect_timeout)
    except Exception as exc:
        with contextlib.suppress(Exception):
            await nc.close()
        msg = f"cannot connect to NATS at {', '.join(opts.servers)} within {opts.connect_timeout:g} s: {exc!r}"
        raise ServerError(msg) from exc
    return nc


async def close(nc: NATS, role: str) -> None:
    """Close ``nc`` (flushing what it buffered); a server that is already gone is no error.

    A worker told to stop while NATS is down must still stop cleanly: nats-py's close flushes its
    buffer to the lost socket and raises ``ConnectionResetError``, although nothing more can be done.
    What was buffered and never acknowledged is the caller's to account for (publishes are retried
    from their inputs, which stay unacknowledged).
    """
    if nc.is_closed:
        return
    try:
        await nc.close()
    except OSError as exc:
        log.warning("nats (%s): closed with the server unreachable (%r)", role, exc)


def new_member_id() -> str:
    """A group member id unique to this process, usable as one KV key token."""
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40]
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"
