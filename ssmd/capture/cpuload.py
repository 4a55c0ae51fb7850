"""How CPU-bound this process is, from its own CPU time: a pressure from 0 to 1.

A worker is one Python thread: when it uses nearly a whole core it cannot do more work per second, and
every event it handles costs the same fixed overhead in Faust and the transport whatever the event
carries. That is the moment to trade latency for bigger batches (:class:`~ssmd.capture.batcher.Batcher`).
The gauge compares the process's CPU time with wall time over windows of ``window`` seconds; the
pressure is 0 up to ``low`` utilization, 1 from ``high`` on, and linear in between.

Proportional, not on/off. The on/off gauge it replaces (busy from a window at 0.9 of a core until
one below 0.75) stayed on anywhere between 0.75 and 0.9 once it had been on, so a worker at 0.8 of a
core kept waiting 50 ms for batches it had the CPU to send at 20 ms; and a worker that could not
reach 0.9 of a core because other processes took the CPU never turned it on. The pressure is lower
than the on/off gauge's verdict between the thresholds and the same at and above ``high``.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CpuGauge:
    def __init__(self, *, low: float = 0.75, high: float = 0.9, window: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 cpu: Callable[[], float] = time.process_time) -> None:  # fmt: skip
        if not 0 < low < high:
            msg = f"need 0 < low < high, got low={low}, high={high}"
            raise ValueError(msg)
        self.high, self.low, self.window = high, low, window
        self._clock, self._cpu = clock, cpu
        self._t0, self._c0 = clock(), cpu()
        self._pressure = 0.0
        self.utilization = 0.0
        """CPU time / wall time over the last complete window (1.0 = one core)."""

    def pressure(self) -> float:
        """0 (room to spare) to 1 (CPU-bound), from the last complete window (re-measured once one has passed)."""
        now = self._clock()
        if now - self._t0 >= self.window:
            cpu = self._cpu()
            self.utilization = (cpu - self._c0) / (now - self._t0)
            self._t0, self._c0 = now, cpu
            self._pressure = min(1.0, max(0.0, (self.utilization - self.low) / (self.high - self.low)))
        return self._pressure
