"""Core subscriptions whose messages go straight to a plain function.

``nats-py`` hands every message of a callback subscription to an ``asyncio.Queue`` read by a
task that awaits the callback: a queue put, a get, a task wake-up and a coroutine per message.
For the two hot paths of this transport (pull-consumer deliveries and publish acks) the handler
is a few lines of synchronous bookkeeping, so :func:`subscribe_direct` calls it from the
connection's read loop instead. It relies on ``Subscription._pending_queue`` (``nats-py``
2.16, pinned in pyproject.toml); the handler must not block and must not raise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

log = logging.getLogger(__name__)


class _DirectQueue:
    """Stands in for the subscription's queue: ``put_nowait`` runs the handler at once."""

    def __init__(self, sub: Subscription, handler: Callable[[Msg], None]) -> None:
        self._sub = sub
        self._handler = handler

    def put_nowait(self, msg: Msg) -> None:
        self._sub._pending_size -= len(msg.data)
        try:
            self._handler(msg)
        except Exception:
            log.exception("message handler failed on %s", msg.subject)

    async def get(self) -> Any:
        await asyncio.get_running_loop().create_future()  # never: nothing is ever queued

    def task_done(self) -> None:
        pass

    def empty(self) -> bool:
        return True

    def qsize(self) -> int:
        return 0

    async def join(self) -> None:
        return None


async def subscribe_direct(nc: NATS, subject: str, handler: Callable[[Msg], None]) -> Subscription:
    """Subscribe with a synchronous ``handler`` called for each message, in arrival order."""

    async def fallback(msg: Msg) -> None:
        handler(msg)

    sub = await nc.subscribe(subject, cb=fallback)
    if hasattr(sub, "_pending_queue") and hasattr(sub, "_pending_size"):
        sub._pending_queue = _DirectQueue(sub, handler)  # type: ignore[assignment]
    return sub
