"""Capture-side sequence checking: gaps per (connection, sid) with every ticker seen on the sid."""

from __future__ import annotations

from ssmd.capture.sequencer import SeqGap, Sequencer


def test_contiguous_interleaved_markets_are_no_gap() -> None:
    s = Sequencer()
    for seq, ticker in enumerate(["A", "B", "A", "C", None, "B"], start=1):  # None: an "ok" reply
        assert s.observe(7, 1, seq, ticker) is None
    assert s.gaps == 0


def test_jump_names_every_ticker_of_the_sid_only() -> None:
    s = Sequencer()
    s.observe(7, 1, 1, "A")
    s.observe(7, 1, 2, "B")
    s.observe(7, 2, 1, "T")  # another sid (trades) on the same connection
    gap = s.observe(7, 1, 5, "A")
    assert gap == SeqGap(7, 1, 3, 5, frozenset({"A", "B"}))
    assert gap.missing == 2
    assert s.observe(7, 1, 6, "B") is None


def test_first_seq_above_one_and_new_connections() -> None:
    s = Sequencer()
    gap = s.observe(7, 1, 3, "A")
    assert gap is not None and (gap.expected, gap.received) == (1, 3)
    assert s.observe(8, 1, 1, "A") is None  # a new connection starts over at 1
    assert s.tickers_of(7) == {"A"} and s.tickers_of(8) == {"A"}
    s.forget(7)
    assert s.tickers_of(7) == frozenset()


def test_duplicates_and_late_frames_are_counted_not_gaps() -> None:
    s = Sequencer()
    s.observe(7, 1, 1, "A")
    s.observe(7, 1, 2, "A")
    assert s.observe(7, 1, 2, "A") is None
    assert s.observe(7, 1, 1, "A") is None
    assert (s.duplicates, s.gaps) == (2, 0)
    assert s.observe(7, 1, 3, "A") is None


def test_unsequenced_frames_only_teach_tickers() -> None:
    s = Sequencer()
    assert s.observe(7, 4, None, "X") is None  # ticker channel frames carry no seq
    assert s.observe(7, None, None, None) is None
    assert s.tickers_of(7) == {"X"}
