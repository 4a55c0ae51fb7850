"""Whether this process is CPU-bound, from its own CPU time, with hysteresis.

A worker is one Python thread: when it uses nearly a whole core it cannot do more work per second, and
every event it handles costs the same fixed overhead in Faust and the transport whatever the event
carries. That is the moment to trade latency for bigger batches (:class:`~ssmd.capture.batcher.Batcher`).
The gauge compares the process's CPU time with wall time over windows of ``window`` seconds: busy
from a window at or above ``high`` until one below ``low`` (the gap keeps it from flapping while bigger
batches lower the load they respond to).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CpuGauge:
    def __init__(self, *, high: float = 0.9, low: float = 0.75, window: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 cpu: Callable[[], float] = time.process_time) -> None:  # fmt: skip
        if not 0 < low < high:
            msg = f"need 0 < low < high, got low={low}, high={high}"
            raise ValueError(msg)
        self.high, self.low, self.window = high, low, window
        self._clock, self._cpu = clock, cpu
        self._t0, self._c0 = clock(), cpu()
        self._busy = False
        self.utilization = 0.0
        """CPU time / wall time over the last complete window (1.0 = one core)."""

    def busy(self) -> bool:
        """Whether the process is CPU-bound (re-evaluated once a window has passed since the last time)."""
        now = self._clock()
        if now - self._t0 >= self.window:
            cpu = self._cpu()
            self.utilization = (cpu - self._c0) / (now - self._t0)
            self._t0, self._c0 = now, cpu
            if self.utilization >= self.high:
                self._busy = True
            elif self.utilization < self.low:
                self._busy = False
        return self._busy
