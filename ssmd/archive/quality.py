"""Gaps, the quality score and the condition of an archived ticker-day (or raw day).

The formula (also in ``QUALITY.md``, which the README quotes)::

    window    W = [day start, day end)         (complete day)
              W = [day start, as_of)           (partial day: as_of = time of the upload)
    coverage  C = 1 - |union of gap intervals, clipped to W| / |W|
    sequence  S = n / (n + m)                  (n = records in the file, m = sum of gaps' ``missing``;
                                                S = 1 when n + m = 0)
    quality_score = round(C * S, 6)

A gap's interval runs from ``start_ns`` to ``end_ns``; an open gap (``end_ns`` None) runs to the end
of W. Every kind counts for time (disconnect, exchange_seq, seq_reset, bus); only counted missing
sequence numbers count for S, so a sequence jump costs both the time the book was untrusted and the
messages lost.

Gap identity: the normalizer writes a gap when detected (open) and again when it closes, so gaps are
kept by :func:`gap_key` and the last record of a key wins (the schema's rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any, Literal

from ssmd.archive.timefmt import iso_ns
from ssmd.records import Gap

Condition = Literal["available", "degraded", "pending", "missing"]
CONDITIONS: tuple[Condition, ...] = ("available", "pending", "degraded", "missing")
"""In order of increasing severity."""

GapKey = tuple[str, str, int, int, int]


def gap_key(gap: Gap) -> GapKey:
    """Identity of a gap across its open and close records."""
    return (gap.ticker, gap.kind, gap.connection_id or 0, gap.sid or 0, gap.start_ns)


def merge_gap(table: dict[GapKey, Gap], gap: Gap) -> bool:
    """Put ``gap`` into ``table`` (last record of a key wins); True if the table changed."""
    key = gap_key(gap)
    if table.get(key) == gap:
        return False
    table[key] = gap
    return True


def _union_length(intervals: Iterable[tuple[int, int]]) -> int:
    total, cur_start, cur_end = 0, -1, -1
    for start, end in sorted(intervals):
        if start > cur_end:
            total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    return total + cur_end - cur_start


def coverage(gaps: Iterable[Gap], window_start_ns: int, window_end_ns: int) -> float:
    """C: the fraction of ``[window_start_ns, window_end_ns)`` not inside any gap."""
    span = window_end_ns - window_start_ns
    if span <= 0:
        return 1.0
    clipped = []
    for g in gaps:
        start = max(g.start_ns, window_start_ns)
        end = min(window_end_ns if g.end_ns is None else g.end_ns, window_end_ns)
        if end > start:
            clipped.append((start, end))
    return 1.0 - _union_length(clipped) / span


def sequence_completeness(record_count: int, gaps: Iterable[Gap]) -> float:
    """S: records kept over records kept plus sequence numbers known to be missing."""
    missing = sum(g.missing for g in gaps)
    total = record_count + missing
    return 1.0 if total == 0 else record_count / total


def quality_score(gaps: Iterable[Gap], window_start_ns: int, window_end_ns: int, record_count: int) -> float:
    """The ``quality_score`` of a manifest: ``round(C * S, 6)`` (see the module docstring)."""
    gaps = list(gaps)
    return round(coverage(gaps, window_start_ns, window_end_ns) * sequence_completeness(record_count, gaps), 6)


def condition(status: str, record_count: int, score: float) -> Condition:
    """``pending`` until the day is complete; then ``missing`` (no records), ``degraded`` (score < 1)
    or ``available``."""
    if status != "complete":
        return "pending"
    if record_count == 0:
        return "missing"
    return "degraded" if score < 1.0 else "available"


def worst(conditions: Iterable[str]) -> Condition:
    """The worst of several conditions (missing > degraded > pending > available); available if none."""
    rank: dict[str, int] = {c: i for i, c in enumerate(CONDITIONS)}
    return CONDITIONS[max((rank[c] for c in conditions), default=0)]


def gap_json(gap: Gap) -> dict[str, Any]:
    """A gap as a manifest entry: every field, plus ISO times for people."""
    out = asdict(gap)
    out["start"] = iso_ns(gap.start_ns)
    out["end"] = None if gap.end_ns is None else iso_ns(gap.end_ns)
    return out


def gap_from_json(entry: Mapping[str, Any]) -> Gap:
    """The :class:`Gap` of a manifest entry (RecordError if the entry is invalid)."""
    fields = {k: v for k, v in entry.items() if k not in ("start", "end")}
    return Gap(**fields)
