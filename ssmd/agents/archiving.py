"""Driving an archive writer from a Faust stream: commit input offsets only after the upload.

The writers (:mod:`ssmd.archive`) take each input event with its ``(partition, offset)`` and report,
after each upload (:meth:`flush`), which positions are durable. The agent therefore reads the stream
without automatic acks, keeps each event until a flush covers it, and acks it then; Faust commits only
acked offsets, so a crash re-delivers everything not yet uploaded, and the writers' watermarks skip
what was. Flushes run every ``archive_interval`` seconds, and once more when the agent stops (SIGTERM:
partial files and manifests are uploaded before the worker exits).

The archiver apps run with ``stream_wait_empty=False``: a rebalance must not wait for events that are
deliberately held until the next upload; an event not acked when its partition moves is simply
re-delivered to the new owner, whose writer skips what the old owner uploaded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ssmd.archive import Position

log = logging.getLogger("ssmd.agents.archiving")


class Writer(Protocol):
    async def flush(self) -> dict[int, int]: ...


class Held:
    """Events waiting for the upload that makes them durable, per partition, in offset order."""

    def __init__(self) -> None:
        self._events: dict[int, deque[Any]] = {}

    def hold(self, event: Any) -> None:
        self._events.setdefault(event.message.partition, deque()).append(event)

    def release(self, durable: dict[int, int]) -> int:
        """Ack every held event at or below its partition's durable offset; return how many."""
        n = 0
        for partition, offset in durable.items():
            queue = self._events.get(partition)
            while queue and queue[0].message.offset <= offset:
                queue.popleft().ack()
                n += 1
        return n

    def __len__(self) -> int:
        return sum(len(q) for q in self._events.values())


async def run_archiver(
    stream: Any,
    writer: Writer,
    add: Callable[[Any, Position], Awaitable[None]],
    interval: float,
    name: str,
) -> None:
    """Consume ``stream`` (events of batch bytes) into ``writer``; see the module docstring."""
    held = Held()
    last_flush = time.monotonic()
    lock = asyncio.Lock()

    async def flush() -> None:
        nonlocal last_flush
        async with lock:
            durable = await writer.flush()
            released = held.release(durable)
            last_flush = time.monotonic()
            log.debug("%s: uploaded; %d events now committed", name, released)

    async def ticker() -> None:
        while True:
            await asyncio.sleep(max(0.05, interval - (time.monotonic() - last_flush)))
            if time.monotonic() - last_flush >= interval:
                try:
                    await flush()
                except Exception:  # an upload failure is retried at the next tick; nothing is acked
                    log.exception("%s: upload failed; will retry", name)

    timer = asyncio.ensure_future(ticker())
    try:
        async for event in stream.noack().events():
            await add(event.value, (event.message.partition, event.message.offset))
            held.hold(event)
    finally:
        timer.cancel()
        try:
            await asyncio.shield(flush())
        except Exception:
            log.exception("%s: final upload failed; %d events will be re-delivered", name, len(held))
