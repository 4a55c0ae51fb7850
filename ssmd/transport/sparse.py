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
               committed: int | None, floor: int | None = None) -> int | None:
    """The offset to commit (Kafka meaning: next to read), consuming what it covers.

    ``floor`` is the first offset delivered since the partition was last sought (``None`` if
    unknown): everything between ``committed`` and ``floor`` belongs to other partitions. Acked
    offsets and gaps are swept in order; the covered run must start right at ``committed`` (or
    at ``floor`` before any commit), so an offset still being processed is never committed
    past, even when later ones were acknowledged first. ``None`` when nothing new is covered;
    offsets and gaps beyond a hole stay for a later commit.
    """
    if not acked:
        return None
    extra = [(committed, floor)] if committed is not None and floor is not None and floor > committed else []
    spans = sorted([(o, o + 1) for o in acked] + gaps + extra)
    begin, end = spans[0]
    start = committed if committed is not None else floor
    if start is not None and floor is not None:
        if begin > start:
            return None
    elif committed is not None and committed > 0 and begin - committed > 1:
        # Without a floor, Faust's own tolerance: the committed offset itself may belong to
        # another partition, so a hole of one right after it is accepted.
        return None
    for b, e in spans[1:]:
        if b > end:
            break
        end = max(end, e)
    acked[:] = [o for o in acked if o >= end]
    acked_index.intersection_update(acked)
    gaps[:] = [(max(b, end), e) for b, e in gaps if e > end]
    return end
