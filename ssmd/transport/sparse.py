"""Commit bookkeeping for sparse offsets (a partition's stream sequences skip the other partitions').

Faust's base consumer records a jump from read offset ``r`` to ``o`` as the gap ``[r+1, o]``,
which includes ``o`` itself. ``o`` is then both a gap and an acknowledged offset, the merged list
has a duplicate, and ``_new_offset`` stops its consecutive run there: every commit advances one
run only, so with interleaved partitions commits fall ever further behind. It also merges an
IntervalTree on every message. These two functions replace that logic: gaps are plain
half-open ``(begin, end)`` pairs appended in O(1), never include the received offset, and the
committable offset is found by one sort-and-sweep per commit.
"""

from __future__ import annotations


def add_gap(gaps: list[tuple[int, int]], committed: int | None, offset_from: int, offset_to: int) -> None:
    """Record that offsets ``offset_from .. offset_to - 1`` will never arrive on this partition.

    ``offset_to`` is the offset just received; Faust passes it as the inclusive end.
    """
    if committed is not None:
        offset_from = max(offset_from, committed)
    if offset_from < offset_to:
        gaps.append((offset_from, offset_to))


def new_offset(acked: list[int], acked_index: set[int], gaps: list[tuple[int, int]],
               committed: int | None) -> int | None:
    """The offset to commit (Kafka meaning: next to read), consuming what it covers.

    Acked offsets and gaps are swept in order from the committed offset; the run of covered
    offsets that starts there ends at the returned offset. ``None`` when nothing new is covered.
    Offsets and gaps beyond a hole stay for a later commit.
    """
    if not acked:
        return None
    spans = sorted([(o, o + 1) for o in acked] + gaps)
    begin, end = spans[0]
    # Faust's own tolerance: a hole of one offset right after the committed one is accepted,
    # because gaps are clipped to start after the committed offset.
    if committed is not None and committed > 0 and begin - committed > 1:
        return None
    for b, e in spans[1:]:
        if b > end:
            break
        end = max(end, e)
    acked[:] = [o for o in acked if o >= end]
    acked_index.intersection_update(acked)
    gaps[:] = [(max(b, end), e) for b, e in gaps if e > end]
    return end
