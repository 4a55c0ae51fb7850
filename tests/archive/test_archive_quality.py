"""The quality score and conditions for known gap sets (the formula in ssmd/archive/QUALITY.md)."""

from __future__ import annotations

import pytest
from archive_helpers import SEC, T0

from ssmd.archive import quality
from ssmd.archive.timefmt import NS_PER_DAY, NS_PER_HOUR
from ssmd.records import Gap

END = T0 + NS_PER_DAY


def gap(start_s: float, end_s: float | None, missing: int = 0, kind: str = "disconnect") -> Gap:
    end = None if end_s is None else T0 + int(end_s * SEC)
    return Gap("T", kind, T0 + int(start_s * SEC), end or T0 + int(start_s * SEC), end, 1, 1,  # type: ignore[arg-type]
               missing=missing)


@pytest.mark.parametrize(
    ("gaps", "records", "score"),
    [
        ([], 100, 1.0),
        ([], 0, 1.0),  # nothing known to be missing
        ([gap(0, 864)], 100, 0.99),  # 1% of the day disconnected
        ([gap(100, 200), gap(150, 300)], 100, 1 - 200 / 86400),  # overlapping gaps count once
        ([gap(100, 200), gap(100, 200)], 100, 1 - 100 / 86400),
        ([gap(82800, None)], 100, 1 - 3600 / 86400),  # an open gap runs to the end of the window
        ([gap(-3600, 60)], 100, 1 - 60 / 86400),  # a gap from the day before is clipped
        ([gap(10, 10, missing=10, kind="exchange_seq")], 90, 0.9),  # 10 of 100 messages lost
        ([gap(0, 8640, missing=25, kind="exchange_seq")], 75, 0.9 * 0.75),
    ],
)
def test_score_for_known_gaps(gaps: list[Gap], records: int, score: float) -> None:
    assert quality.quality_score(gaps, T0, END, records) == pytest.approx(score, abs=1e-6)


def test_partial_window_ends_at_upload_time() -> None:
    as_of = T0 + 2 * NS_PER_HOUR
    assert quality.quality_score([gap(3600, None)], T0, as_of, 5) == 0.5


def test_conditions() -> None:
    assert quality.condition("partial", 10, 1.0) == "pending"
    assert quality.condition("partial", 10, 0.5) == "pending"
    assert quality.condition("complete", 0, 1.0) == "missing"
    assert quality.condition("complete", 10, 0.999) == "degraded"
    assert quality.condition("complete", 10, 1.0) == "available"
    assert quality.worst(["available", "degraded", "pending"]) == "degraded"
    assert quality.worst([]) == "available"


def test_last_record_of_a_gap_wins() -> None:
    table: dict[quality.GapKey, Gap] = {}
    opened = gap(100, None, missing=3, kind="exchange_seq")
    closed = Gap("T", "exchange_seq", opened.start_ns, T0 + 500 * SEC, T0 + 500 * SEC, 1, 1, missing=3)
    assert quality.merge_gap(table, opened) and quality.merge_gap(table, closed)
    assert not quality.merge_gap(table, closed)
    assert list(table.values()) == [closed]
    assert quality.gap_from_json(quality.gap_json(closed)) == closed
