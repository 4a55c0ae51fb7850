"""The normalizer state machine: exact books, gaps on seq jumps and reconnects, flags, recovery, restart."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from ssmd import records as r
from ssmd.capture import markers
from ssmd.normalize.normalizer import Normalizer, Output

D = Decimal


def snap(sid: int, seq: int, ticker: str, yes: list[tuple[str, str]], no: list[tuple[str, str]]) -> bytes:
    msg: dict[str, Any] = {"market_ticker": ticker, "market_id": "m"}
    if yes:
        msg["yes_dollars_fp"] = [list(level) for level in yes]
    if no:
        msg["no_dollars_fp"] = [list(level) for level in no]
    return json.dumps({"type": "orderbook_snapshot", "sid": sid, "seq": seq, "msg": msg}).encode()


def delta(sid: int, seq: int, ticker: str, side: str, price: str, change: str) -> bytes:
    msg = {"market_ticker": ticker, "market_id": "m", "price_dollars": price, "delta_fp": change, "side": side,
           "ts_ms": 1_700_000_000_000 + seq}  # fmt: skip
    return json.dumps({"type": "orderbook_delta", "sid": sid, "seq": seq, "msg": msg}).encode()


def trade(sid: int, seq: int, ticker: str, price: str, count: str, taker: str) -> bytes:
    msg = {"market_ticker": ticker, "trade_id": f"t{seq}", "yes_price_dollars": price, "count_fp": count,
           "taker_side": taker, "ts_ms": 1_700_000_000_000}  # fmt: skip
    return json.dumps({"type": "trade", "sid": sid, "seq": seq, "msg": msg}).encode()


class Feed:
    def __init__(self, normalizer: Normalizer | None = None) -> None:
        self.n = normalizer or Normalizer()
        self.now = 1_000

    def __call__(self, data: bytes, conn: int = 7, out: Output | None = None) -> Output:
        self.now += 1_000
        return self.n.process(r.RawFrame(self.now, "x", data, conn), out)


def books(out: Output) -> list[r.OrderBookUpdate]:
    return [x for x in out.records if isinstance(x, r.OrderBookUpdate)]


def gaps(out: Output) -> list[r.Gap]:
    return [x for x in out.records if isinstance(x, r.Gap)]


def test_snapshot_and_deltas_give_absolute_yes_levels() -> None:
    feed = Feed()
    (s,) = books(feed(snap(1, 1, "A.B", [("0.4000", "10.00"), ("0.4100", "5.50")], [("0.5500", "3.00")])))
    assert s.kind == "snapshot" and not s.flagged
    assert s.bids == (r.Level(D("0.41"), D("5.5")), r.Level(D("0.40"), D("10")))
    assert s.asks == (r.Level(D("0.45"), D("3")),)  # YES ask = 1 - NO bid
    (c1,) = books(feed(delta(1, 2, "A.B", "yes", "0.4000", "-4.00")))
    assert (c1.kind, c1.bids, c1.asks) == ("change", (r.Level(D("0.4"), D("6")),), ())
    assert c1.exchange_ns == 1_700_000_000_002 * 10**6 and c1.seq == 2 and c1.connection_id == 7
    (c2,) = books(feed(delta(1, 3, "A.B", "no", "0.5500", "-3.00")))
    assert c2.asks == (r.Level(D("0.45"), D("0")),)  # size 0 removes the level
    assert feed.n.ticker("A.B").book.asks() == []


def test_seq_gap_marker_flags_its_tickers_until_their_snapshots() -> None:
    feed = Feed()
    feed(snap(1, 1, "A", [("0.10", "1.00")], []))
    feed(snap(1, 2, "B", [("0.20", "1.00")], []))
    # seqs 3 and 4 never came: the capture side saw the jump and says which tickers it touches
    feed.now += 1_000
    out = feed.n.process(markers.gap_frame(feed.now, 7, 1, 3, 5, ["A", "B"]))
    out = feed(delta(1, 5, "A", "yes", "0.1000", "1.00"), out=out)
    opened = gaps(out)
    assert [(g.ticker, g.kind, g.expected_seq, g.received_seq, g.missing, g.end_ns) for g in opened] == [
        ("A", "exchange_seq", 3, 5, 2, None),
        ("B", "exchange_seq", 3, 5, 2, None),
    ]
    assert out.resync == {"A", "B"}
    assert books(out)[0].flagged
    t_out = feed(trade(1, 6, "B", "0.2000", "1.00", "yes"))
    assert [x.flagged for x in t_out.records if isinstance(x, r.Trade)] == [True]
    recovered = feed(snap(1, 7, "A", [("0.10", "9.00")], []))
    (closed,) = gaps(recovered)
    assert closed.ticker == "A" and closed.end_ns is not None and closed.start_ns == opened[0].start_ns
    assert not books(recovered)[0].flagged
    (after,) = books(feed(delta(1, 8, "A", "yes", "0.1000", "1.00")))
    assert not after.flagged and after.bids == (r.Level(D("0.1"), D("10")),)
    assert feed.n.ticker("B").gap_since is not None  # B still waits for its snapshot


def test_duplicates_and_late_frames_are_not_applied_twice() -> None:
    feed = Feed()
    feed(snap(1, 1, "A", [("0.10", "1.00")], []))
    feed(delta(1, 2, "A", "yes", "0.1000", "1.00"))
    assert feed(delta(1, 2, "A", "yes", "0.1000", "1.00")).records == []
    assert feed.n.ticker("A").book.bids() == [(1000, 200)]
    assert feed.n.counters.duplicates == 1


def test_delta_before_snapshot_and_negative_level_need_recovery() -> None:
    feed = Feed()
    out = feed(delta(1, 1, "A", "yes", "0.1000", "1.00"))
    assert [g.kind for g in gaps(out)] == ["exchange_seq"] and out.resync == {"A"}
    assert books(out)[0].flagged
    feed(snap(1, 2, "B", [("0.10", "1.00")], []))
    out = feed(delta(1, 3, "B", "yes", "0.1000", "-2.00"))
    assert out.resync == {"B"} and books(out)[0].flagged
    assert books(out)[0].bids == (r.Level(D("0.1"), D("0")),)  # clamped, never negative


def test_reconnect_is_a_disconnect_gap_closed_by_the_new_snapshot() -> None:
    feed = Feed()
    feed(snap(1, 1, "A", [("0.10", "1.00")], []), conn=7)
    feed(delta(1, 2, "A", "yes", "0.1000", "1.00"), conn=7)
    last_good = feed.now
    out = feed(snap(1, 1, "A", [("0.10", "5.00")], []), conn=8)  # new connection: sid/seq restart
    opened, closed = gaps(out)
    assert (opened.kind, opened.start_ns, opened.end_ns) == ("disconnect", last_good, None)
    assert (closed.kind, closed.start_ns, closed.end_ns) == ("disconnect", last_good, feed.now)
    assert out.resync == set()
    assert not books(out)[0].flagged


def test_disconnect_marker_opens_gaps_from_each_tickers_last_frame() -> None:
    feed = Feed()
    feed(snap(1, 1, "A", [("0.10", "1.00")], []), conn=7)
    last_a = feed.now
    feed(snap(2, 1, "Z", [("0.10", "1.00")], []), conn=9)
    out = feed.n.process(markers.disconnect_frame(feed.now + 500, 7, "1006", ["A"]))
    assert [(g.ticker, g.kind, g.start_ns, g.end_ns) for g in gaps(out)] == [("A", "disconnect", last_a, None)]
    assert out.resync == {"A"}


def test_seq_jumps_alone_are_not_gaps_here() -> None:
    """A partition sees a subsequence of a sid: only the capture side can call a jump a gap."""
    feed = Feed()
    feed(snap(1, 1, "A", [("0.10", "1.00")], []))
    assert gaps(feed(delta(1, 9, "A", "yes", "0.1000", "1.00"))) == []


def test_trade_and_book_sids_are_deduplicated_separately() -> None:
    feed = Feed()
    feed(snap(1, 1, "A", [("0.10", "1.00")], []))
    feed(trade(2, 1, "A", "0.1000", "1.00", "yes"))
    feed(delta(1, 2, "A", "yes", "0.1000", "1.00"))
    assert feed(trade(2, 1, "A", "0.1000", "1.00", "yes")).records == []  # duplicate trade
    assert feed(delta(1, 2, "A", "yes", "0.1000", "1.00")).records == []  # duplicate delta
    assert len(feed(trade(2, 2, "A", "0.1000", "1.00", "yes")).records) == 1


def test_malformed_marker_is_counted_not_fatal() -> None:
    feed = Feed()
    feed.n.process(r.RawFrame(5, markers.GAP, b"{}", 7))
    feed.n.process(r.RawFrame(6, "ssmd.unknown", b"{}", 7))
    assert feed.n.counters.malformed == 2


def test_state_survives_a_restart_through_the_store() -> None:
    store: dict[str, Any] = {}
    first = Feed(Normalizer(store))
    first(snap(1, 1, "A", [("0.10", "1.00")], [("0.80", "2.00")]))
    first(delta(1, 2, "A", "yes", "0.1000", "1.00"))
    assert first.n.commit() == 1
    store = json.loads(json.dumps(store))  # what a changelog would give back
    second = Feed(Normalizer(store))
    second.now = first.now
    (c,) = books(second(delta(1, 3, "A", "yes", "0.1000", "1.00")))
    assert not c.flagged and c.bids == (r.Level(D("0.1"), D("3")),)
    assert second(delta(1, 3, "A", "yes", "0.1000", "1.00")).records == []  # already applied before restart


def test_malformed_frames_are_counted_and_skipped() -> None:
    feed = Feed()
    assert feed(b"{oops").records == []
    feed(snap(1, 1, "A", [("0.10", "1.00")], []))
    assert feed.n.counters.malformed == 1 and feed.n.counters.frames == 2


def test_out_of_range_values_are_malformed_frames_never_a_crash() -> None:
    """A count no record can hold is counted as malformed; a book it reached is recovered like after a gap."""
    feed = Feed()
    feed(snap(1, 1, "A", [("0.5000", "10.00")], []))
    assert feed(delta(1, 2, "A", "yes", "0.5000", "1" + "0" * 30 + ".00")).records == []  # refused by the parser
    assert feed.n.counters.malformed == 1 and feed.n.ticker("A").book.valid
    # Within Int64 itself, but the level it makes is not: the book took it, so it needs a fresh snapshot.
    out = feed(delta(1, 3, "A", "yes", "0.5000", "92233720368547758.00"))
    assert feed.n.counters.malformed == 2
    assert [(g.ticker, g.kind, g.end_ns) for g in gaps(out)] == [("A", "exchange_seq", None)] and out.resync == {"A"}
    (s,) = books(feed(snap(1, 4, "A", [("0.5000", "12.00")], [])))
    assert s.bids == (r.Level(D("0.5"), D("12")),) and not s.flagged
    assert feed(trade(1, 5, "A", "0.5000", "1.00", "yes")).records[0].flagged is False


def test_a_malformed_frame_about_a_market_is_a_one_message_gap() -> None:
    """The capture named the market and seq of a frame nobody can parse: that market's record has a hole."""
    feed = Feed()
    feed(snap(1, 1, "A", [("0.10", "1.00")], []))
    broken = b'{"type":"orderbook_delta","sid":1,"seq":2,"msg":{"market_ticker":"A","price_dollars":"x"}}'
    out = feed.n.process(r.RawFrame(feed.now + 1, "orderbook_delta", broken, 7, 1, 2, "A"))
    assert [(g.ticker, g.kind, g.expected_seq, g.received_seq, g.missing, g.end_ns) for g in gaps(out)] == [
        ("A", "exchange_seq", 2, 3, 1, None)
    ]
    assert out.resync == {"A"} and feed.n.counters.malformed == 1
    (c,) = books(feed(delta(1, 3, "A", "yes", "0.1000", "1.00")))
    assert c.flagged  # the book may lack the lost change until the next snapshot
    closed = gaps(feed(snap(1, 4, "A", [("0.10", "5.00")], [])))
    assert [(g.ticker, g.end_ns is not None) for g in closed] == [("A", True)]
    # A malformed frame naming no market opens nothing.
    assert gaps(feed(b"{oops")) == []


def test_copies_from_the_previous_owner_are_dropped_once_the_book_is_ours() -> None:
    """After a handover, the old owner's connection (1) still carries the market for a while: copies."""
    feed = Feed(Normalizer(is_local=lambda conn: conn == 2))
    feed(snap(1, 1, "A", [("0.10", "1.00")], []), conn=1)
    feed(delta(1, 2, "A", "yes", "0.1000", "1.00"), conn=1)  # the old owner's, before the handover: applied
    early_trade_ns = feed.now + 500  # received by the old owner before the new owner subscribed
    (s,) = books(feed(snap(5, 1, "A", [("0.10", "2.00")], []), conn=2))
    assert s.bids == (r.Level(D("0.1"), D("2")),)
    assert feed(delta(1, 3, "A", "yes", "0.1000", "7.00"), conn=1).records == []  # a copy of conn 2's
    assert feed(trade(2, 9, "A", "0.1000", "1.00", "yes"), conn=1).records == []  # conn 2 has it too
    late = feed.n.process(r.RawFrame(early_trade_ns, "trade", trade(2, 8, "A", "0.1000", "3.00", "no"), 1))
    assert [x.count for x in late.records if isinstance(x, r.Trade)] == [D("3")]  # conn 2 never saw it
    closed = feed.n.process(markers.disconnect_frame(feed.now + 1, 1, "old owner stopped", ["A"]))
    assert gaps(closed) == []  # the old owner's disconnect is not a hole in this book
    (c,) = books(feed(delta(5, 2, "A", "yes", "0.1000", "1.00"), conn=2))
    assert c.bids == (r.Level(D("0.1"), D("3")),) and not c.flagged
    assert feed.n.counters.superseded == 3
    # A trade the new owner got before its book snapshot, which the old owner also carried: recorded once.
    feed2 = Feed(Normalizer(is_local=lambda conn: conn == 2))
    feed2(snap(1, 1, "B", [("0.10", "1.00")], []), conn=1)
    first = feed2(trade(2, 4, "B", "0.1000", "1.00", "yes"), conn=1)  # the old owner's copy: kept (earlier)
    again = feed2(trade(6, 1, "B", "0.1000", "1.00", "yes").replace(b'"t1"', b'"t4"'), conn=2)  # same trade_id
    assert [x.trade_id for x in first.records] == ["t4"] and again.records == []
    assert gaps(feed2(trade(6, 2, "B", "0.1000", "2.00", "no"), conn=2)) == []  # its seq still counted
    # Without a local connection in the picture (the old behaviour), a new connection's snapshot still
    # takes over and nothing is dropped.
    other = Feed()
    other(snap(1, 1, "A", [("0.10", "1.00")], []), conn=1)
    other(snap(5, 1, "A", [("0.10", "2.00")], []), conn=2)
    assert len(books(other(delta(1, 3, "A", "yes", "0.1000", "7.00"), conn=1))) == 1


def test_raw_messages_removed_unread_are_a_bus_gap_until_each_snapshot() -> None:
    feed = Feed()
    for position, ticker in ((10, "A"), (11, "B"), (12, "C")):
        feed.n.begin(position)
        feed(snap(1, position - 9, ticker, [("0.10", "1.00")], []))
    feed.n.ticker("C").position = 30  # a run before this one read past the hole: C lost nothing
    feed.n.begin(31)
    out = feed.n.bus_gap(["A", "B", "C"], 13, 31, "RAW", feed.now + 1)
    assert [(g.ticker, g.kind, g.expected_seq, g.received_seq, g.missing, g.stream, g.end_ns) for g in gaps(out)] == [
        ("A", "bus", 13, 31, 0, "RAW", None),
        ("B", "bus", 13, 31, 0, "RAW", None),
    ]
    assert gaps(out)[0].start_ns == feed.n.ticker("A").last_ns  # lost from the last time A was heard of
    assert out.resync == {"A", "B"} and feed.n.counters.bus_gaps == 1
    assert books(feed(delta(1, 4, "A", "yes", "0.1000", "1.00")))[0].flagged
    recovered = feed(snap(1, 5, "A", [("0.10", "7.00")], []))
    assert [(g.ticker, g.kind, g.end_ns is not None) for g in gaps(recovered)] == [("A", "bus", True)]
    assert not books(feed(delta(1, 6, "A", "yes", "0.1000", "1.00")))[0].flagged
    assert feed.n.ticker("B").gap_since is not None and feed.n.ticker("C").gap_since is None
