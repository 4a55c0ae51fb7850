"""Commit bookkeeping over sparse offsets (a partition's sequences in a shared stream)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from ssmd.transport.sparse import add_gap, new_offset


@st.composite
def _partition_reads(draw: st.DrawFn) -> tuple[list[int], set[int]]:
    offsets = sorted(draw(st.sets(st.integers(1, 400), min_size=1, max_size=60)))
    acked = draw(st.sets(st.sampled_from(offsets)))
    return offsets, acked


@given(_partition_reads(), st.randoms())
def test_commit_stops_at_the_first_unprocessed_offset(reads: tuple[list[int], set[int]], rnd: object) -> None:
    offsets, acked = reads
    gaps: list[tuple[int, int]] = []
    for prev, cur in itertools.pairwise(offsets):
        if cur - prev > 1:  # Faust calls _add_gap(tp, read_offset + 1, offset) on a jump
            add_gap(gaps, None, prev + 1, cur)
    order = sorted(acked)
    rnd.shuffle(order)  # type: ignore[attr-defined]
    acked_list = list(order)
    result = new_offset(acked_list, set(acked_list), gaps, None, floor=offsets[0])
    first_missing = next((o for o in offsets if o not in acked), None)
    if not acked:
        assert result is None
    elif first_missing is None:
        assert result == offsets[-1] + 1  # everything processed: resume after the last
    elif first_missing == offsets[0]:
        assert result is None  # the first message is still being processed
    else:
        assert result == first_missing  # resume exactly at the first unprocessed message


def test_commits_keep_up_across_many_rounds() -> None:
    """Interleaved partitions: every commit round covers everything acked so far."""
    gaps: list[tuple[int, int]] = []
    acked: list[int] = []
    index: set[int] = set()
    committed = None
    last = None
    for seq in range(1, 3000, 3):  # this partition owns every third sequence
        if last is not None and seq - last > 1:
            add_gap(gaps, committed, last + 1, seq)
        last = seq
        acked.append(seq)
        index.add(seq)
        if seq % 300 == 1:
            committed = new_offset(acked, index, gaps, committed, floor=1) or committed
            assert committed == seq + 1
    committed = new_offset(acked, index, gaps, committed, floor=1)
    assert committed == last + 1
    assert not gaps and not acked  # nothing left over to re-sort next round
