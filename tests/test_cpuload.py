"""The CPU gauge: a pressure of 0 up to ``low`` utilization, 1 from ``high`` on, linear in between."""

from __future__ import annotations

import pytest

from ssmd.capture.cpuload import CpuGauge


def test_pressure_grows_with_utilization() -> None:
    now, cpu = [0.0], [0.0]
    gauge = CpuGauge(low=0.8, high=0.9, window=1.0, clock=lambda: now[0], cpu=lambda: cpu[0])

    def window(utilization: float) -> float:
        now[0] += 1.0
        cpu[0] += utilization
        return gauge.pressure()

    got = [window(u) for u in (0.5, 0.8, 0.85, 0.9, 0.99, 0.82, 0.3)]
    assert got == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0, 0.2, 0.0])
    assert gauge.utilization == pytest.approx(0.3)
    now[0] += 0.5  # within a window: the last measure stands
    cpu[0] += 0.5
    assert gauge.pressure() == 0.0


def test_thresholds_must_leave_a_gap() -> None:
    with pytest.raises(ValueError, match="low < high"):
        CpuGauge(high=0.5, low=0.6)
