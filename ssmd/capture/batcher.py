"""Per-partition batching of raw frames with group commit and an event budget.

Frames are appended synchronously (from the connector's receive callback) to their partition's
buffer. A partition with no batch in flight sends its buffer as one batch once it holds ``min_batch``
frames, or once its oldest frame has waited ``linger`` seconds *and* the event budget allows another
batch, or at the latest once that frame has waited ``max_linger``; frames that arrive while a batch
waits for its acknowledgement go out together in the next one (group commit). A batch holds at most
``max_batch`` frames.

The budget (``max_rate`` batches per second over all partitions, a token bucket) is what makes batches
grow with load: every batch is one Faust event, and each stage downstream pays Faust's per-event cost
(~0.5-1 ms of CPU here) once per batch. Below the budget a frame waits ``linger`` plus one round trip;
above it, batches grow instead of the event rate, and no frame waits more than ``max_linger`` plus one
round trip.

As the process becomes CPU-bound (``cpu_pressure()`` from 0 to 1, :mod:`ssmd.capture.cpuload`) the bound
grows from ``max_linger`` to ``busy_linger``: with every partition's batches going out at
``max_linger``, a saturated worker spends a third of its CPU on per-event overhead, and batches a few
times bigger let it keep up with more frames (a saturated worker's latency is set by its backlog, not
by the linger).

When more than ``high_water`` frames are buffered in total, ``on_pressure(True)`` asks the producer to
stop reading (the connector pauses its sockets, losing nothing); below ``high_water / 2`` it is resumed.

Contract of ``send(partition, frames)``: return once the batch is durably acknowledged, or raise. A
failed batch is put back at the head of its buffer and retried, so frames are never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from ssmd.records import RawFrame

log = logging.getLogger(__name__)

Send = Callable[[int, list[RawFrame]], Awaitable[None]]


class Batcher:
    def __init__(self, send: Send, *, max_batch: int = 1000, min_batch: int = 256, linger: float = 0.002,
                 max_linger: float = 0.02, max_rate: float = 100.0, high_water: int = 200_000,
                 on_pressure: Callable[[bool], None] | None = None, retry_delay: float = 0.5,
                 cpu_pressure: Callable[[], float] | None = None, busy_linger: float = 0.05) -> None:  # fmt: skip
        self._send = send
        self.max_batch = max_batch
        self.min_batch = min_batch
        self.linger = linger
        self.max_linger = max(linger, max_linger)
        self.busy_linger = max(self.max_linger, busy_linger)
        self._cpu_pressure = cpu_pressure
        self.max_rate = max_rate
        self._burst = 8.0
        self._tokens = self._burst
        self._refilled = time.monotonic()
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self.high_water = high_water
        self._on_pressure = on_pressure
        self._retry_delay = retry_delay
        self._buffers: dict[int, list[RawFrame]] = {}
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._buffered = 0
        self._paused = False
        self._closed = False
        self.batches_sent = 0
        self.frames_sent = 0
        self.send_errors = 0

    @property
    def buffered(self) -> int:
        return self._buffered

    def add(self, partition: int, frame: RawFrame) -> None:
        """Queue a frame (never blocks); sends at once if the partition is idle."""
        self._buffers.setdefault(partition, []).append(frame)
        self._buffered += 1
        if self._buffered > self.high_water and not self._paused and self._on_pressure is not None:
            self._paused = True
            self._on_pressure(True)
        if partition in self._inflight or self._closed:
            return
        if partition in self._timers and len(self._buffers[partition]) < self.min_batch:
            return  # the partition's timer is set and only a full batch goes sooner: nothing to decide
        self._maybe_start(partition)

    def _maybe_start(self, partition: int) -> None:
        """Start a batch if the buffer is big enough, or old enough within the budget; else set a timer."""
        buf = self._buffers.get(partition)
        if not buf:
            return
        if len(buf) >= self.min_batch or self.linger <= 0:
            self._start(partition)
            return
        waited = (time.time_ns() - buf[0].received_ns) / 1e9
        bound = self.max_linger
        if self._cpu_pressure is not None:
            bound += (self.busy_linger - self.max_linger) * self._cpu_pressure()
        delay = min(max(self.linger - waited, self._token_wait()), bound - waited)
        if delay <= 0:
            self._start(partition)
        elif partition not in self._timers:
            self._timers[partition] = asyncio.get_running_loop().call_later(delay, self._linger_done, partition)

    def _token_wait(self) -> float:
        """Seconds until the budget allows another batch (0: now)."""
        if self.max_rate <= 0:
            return 0.0
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.max_rate

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self.max_rate)
        self._refilled = now

    def _linger_done(self, partition: int) -> None:
        self._timers.pop(partition, None)
        if partition not in self._inflight and not self._closed:
            self._maybe_start(partition)  # another partition may have taken the budget meanwhile

    def _start(self, partition: int) -> None:
        buf = self._buffers.get(partition)
        if not buf:
            return
        timer = self._timers.pop(partition, None)
        if timer is not None:
            timer.cancel()
        self._refill()
        self._tokens = max(-self._burst, self._tokens - 1)  # below zero: a full or overdue batch; others wait
        batch, self._buffers[partition] = buf[: self.max_batch], buf[self.max_batch :]
        task = asyncio.get_running_loop().create_task(self._deliver(partition, batch))
        self._inflight[partition] = task

    async def _deliver(self, partition: int, batch: list[RawFrame]) -> None:
        while True:
            try:
                await self._send(partition, batch)
                break
            except asyncio.CancelledError:
                self._buffers[partition] = batch + self._buffers.get(partition, [])
                raise
            except Exception as e:
                self.send_errors += 1
                log.warning("raw batch to partition %d failed (%s); retrying", partition, e)
                await asyncio.sleep(self._retry_delay)
        self.batches_sent += 1
        self.frames_sent += len(batch)
        self._buffered -= len(batch)
        del self._inflight[partition]
        if self._paused and self._buffered < self.high_water // 2 and self._on_pressure is not None:
            self._paused = False
            self._on_pressure(False)
        if not self._closed:
            self._maybe_start(partition)

    async def drain(self) -> None:
        """Send everything buffered and wait until it is acknowledged (bound it with asyncio.timeout)."""
        while self._buffered:
            for p in list(self._buffers):
                if p not in self._inflight:
                    self._start(p)
            pending = list(self._inflight.values())
            if not pending:
                break
            await asyncio.wait(pending)

    async def close(self) -> None:
        """Stop sending; cancel batches in flight (their frames stay buffered, counted as lost)."""
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._inflight.values()):
            task.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        self._inflight.clear()
