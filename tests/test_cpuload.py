"""The CPU gauge: busy from a window at ``high`` utilization until one below ``low``."""

from __future__ import annotations

import pytest

from ssmd.capture.cpuload import CpuGauge


def test_busy_with_hysteresis() -> None:
    now, cpu = [0.0], [0.0]
    gauge = CpuGauge(high=0.85, low=0.6, window=1.0, clock=lambda: now[0], cpu=lambda: cpu[0])

    def window(utilization: float) -> bool:
        now[0] += 1.0
        cpu[0] += utilization
        return gauge.busy()

    assert [window(u) for u in (0.5, 0.84, 0.9, 0.7, 0.61, 0.59, 0.7, 0.95)] == [
        False, False, True, True, True, False, False, True]  # fmt: skip
    assert gauge.utilization == pytest.approx(0.95)
    now[0] += 0.5  # within a window: the last verdict stands
    cpu[0] += 0.0
    assert gauge.busy() is True


def test_thresholds_must_leave_a_gap() -> None:
    with pytest.raises(ValueError, match="low < high"):
        CpuGauge(high=0.5, low=0.6)
