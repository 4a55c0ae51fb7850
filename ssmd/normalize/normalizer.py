"""The normalizer's state machine: raw frames in receive order -> records, books, gaps, resync requests.

Feed it :class:`~ssmd.records.RawFrame` s of one partition in the order they were received. It keeps:

- one :class:`~ssmd.normalize.book.Book` per ticker, with the connection, sid, last seq and time it last
  heard of it.

Exchange gaps: sequence gaps are detected on the capture side, which sees a connection's whole sequence
(:mod:`ssmd.capture.sequencer`), and arrive as ``ssmd.gap`` marker frames naming this partition's
affected tickers (kind ``seq_reset`` when the exchange ended a sid with error 10 or 25); ``ssmd.disconnect``
markers name the tickers of a lost connection. A delta before any snapshot, or one that drives a level
below zero, is a gap for its ticker; a ticker that reappears on another connection with no gap open had
a disconnect gap from its last frame on the old one (a worker killed before it could say so). Each open
gap is emitted as a :class:`~ssmd.records.Gap` with ``end_ns=None``, its books are invalid, their records
are ``flagged``, and the tickers are returned for recovery (``Output.resync``); the next snapshot closes
the gap (a second Gap record with ``end_ns``).
A frame whose seq is not above the ticker's last on the same (connection, sid) is a duplicate or late
frame: counted and not applied (a delta applied twice would corrupt the book). Raw stream messages
removed before they were read (:meth:`Normalizer.bus_gap`) are a ``bus`` gap for every ticker of the
partition.

State lives in a ``MutableMapping`` (a dict, or a Faust table whose changelog makes it survive a
restart). Touched entries are cached as objects and written back by :meth:`Normalizer.commit`, once per
batch rather than once per frame. Each ticker's state remembers the raw stream position of the last event
it took in (:meth:`Normalizer.begin`), so re-reading events after a restart changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from ssmd import records as r
from ssmd.capture import markers
from ssmd.errors import DecodeError
from ssmd.kalshi import fixedpoint
from ssmd.normalize import parse
from ssmd.normalize.book import Book, BookInvalid

_E4 = r.e4_to_price  # cached Decimals: a normalized record is built for every frame
_E2 = r.e2_to_size
# Records built without their __post_init__ checks (a frozen dataclass's __init__ and checks cost more
# than the rest of a book change): every value is either checked by the parser or the RawFrame, or
# guarded by _ids_in_range; anything else goes through the checked constructor.
_new_book_update = r.unchecked_constructor(r.OrderBookUpdate)
_new_trade = r.unchecked_constructor(r.Trade)


_TRADE_IDS_KEPT = 16


def _ids_in_range(exchange_ns: int | None, sid: int | None, seq: int | None) -> bool:
    """Whether the parser's exchange time, sid and seq fit a record (the one check parsing leaves)."""
    return ((exchange_ns is None or 0 < exchange_ns < r.U64_END) and (sid is None or 0 < sid < r.U64_END)
            and (seq is None or 0 < seq < r.U64_END))  # fmt: skip


@functools.lru_cache(maxsize=1 << 16)
def _level(price_e4: int, size_e2: int) -> r.Level:
    """A shared Level (immutable, so one per price and size): built and checked once, not per record."""
    return r.Level(_E4(price_e4), _E2(size_e2))


@dataclass(slots=True)
class TickerState:
    book: Book = field(default_factory=Book)
    connection_id: int | None = None
    sid: int | None = None
    last_ns: int = 0
    seqs: dict[str, int] = field(default_factory=dict)  # last seq per sid on ``connection_id``
    gap_since: int | None = None  # start of the open gap, None when the book is trusted
    gap_kind: str = ""
    position: int | None = None  # raw stream position of the last event applied
    snap_conn: int | None = None  # connection of the snapshot the book comes from
    snap_ns: int = 0  # its receive time
    trade_ids: list[str] = field(default_factory=list)  # the last few recorded (in memory only: see _trade)

    def state(self) -> dict[str, Any]:
        return {"book": self.book.state(), "conn": self.connection_id, "sid": self.sid, "last_ns": self.last_ns,
                "seqs": dict(self.seqs), "gap_since": self.gap_since, "gap_kind": self.gap_kind,
                "pos": self.position, "snap_conn": self.snap_conn, "snap_ns": self.snap_ns}  # fmt: skip

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> TickerState:
        return cls(Book.from_state(s["book"]), s["conn"], s["sid"], s["last_ns"], dict(s["seqs"]), s["gap_since"],
                   s["gap_kind"], s.get("pos"), s.get("snap_conn"), s.get("snap_ns", 0))  # fmt: skip


@dataclass
class Output:
    records: list[r.AnyRecord] = field(default_factory=list)
    resync: set[str] = field(default_factory=set)
    """Tickers whose books need a fresh snapshot (get_snapshot or resubscribe)."""


@dataclass
class Counters:
    frames: int = 0
    markers: int = 0
    malformed: int = 0
    duplicates: int = 0
    gaps: int = 0
    other: int = 0
    replayed: int = 0
    """Frames and marker tickers skipped because the state already includes their raw event."""
    superseded: int = 0
    """Frames and marker tickers of another connection than the book's own (see ``_superseded``)."""
    bus_gaps: int = 0
    """Ranges of the raw stream removed before they were read (``bus_gap``)."""


class Normalizer:
    def __init__(self, store: MutableMapping[str, Any] | None = None,
                 is_local: Callable[[int | None], bool] | None = None) -> None:  # fmt: skip
        self.store: MutableMapping[str, Any] = {} if store is None else store
        self.is_local: Callable[[int | None], bool] = is_local or (lambda _: False)
        """Whether a connection is this process's own (the capture running beside the normalizer)."""
        self._tickers: dict[str, TickerState] = {}
        self._dirty: set[str] = set()  # ticker names
        self._position: int | None = None
        self._in_event: set[str] = set()
        self.counters = Counters()

    # -- state ------------------------------------------------------------------------------

    def ticker(self, name: str) -> TickerState:
        """The state of ticker ``name``, loaded from the store on first use; it counts as touched."""
        st = self._tickers.get(name)
        if st is None:
            saved = self.store.get(f"book:{name}")
            st = TickerState.from_state(saved) if saved is not None else TickerState()
            self._tickers[name] = st
        self._dirty.add(name)
        return st

    def forget(self) -> None:
        """Drop cached state (after partitions are revoked, the table is the truth); commit first."""
        self._tickers.clear()
        self._dirty.clear()

    def snapshot(self, select: Callable[[str], bool] | None = None) -> dict[str, Any]:
        """The state of every entry touched since its last snapshot (copies: they do not change after).

        ``select``: only the tickers it accepts (the others stay touched, for a later snapshot).
        """
        if select is None:
            names, self._dirty = self._dirty, set()
        else:
            names = {name for name in self._dirty if select(name)}
            self._dirty -= names
        return {f"book:{name}": self._tickers[name].state() for name in names}

    def mark_dirty(self, keys: Iterable[str]) -> None:
        """Have the next :meth:`snapshot` include ``keys`` again (a snapshot that could not be stored)."""
        self._dirty.update(name for k in keys if (name := k.removeprefix("book:")) in self._tickers)

    def commit(self) -> int:
        """Write every entry touched since the last commit to the store; return how many."""
        states = self.snapshot()
        for key, state in states.items():
            self.store[key] = state
        return len(states)

    # -- processing ---------------------------------------------------------------------------

    def begin(self, position: int | None) -> None:
        """Start the raw event at stream ``position`` (increasing within a partition); None: unpositioned.

        A ticker whose state already includes an event at or after ``position`` ignores this event's
        frames and markers: after a crash or a rebalance the table's state may be ahead of the committed
        input offset, and re-applying a marker would reopen a closed gap (the event's records were stored
        before the state was, so nothing is lost by skipping).
        """
        self._position = position
        self._in_event.clear()

    def _replayed(self, ticker: str, t: TickerState) -> bool:
        if self._position is None or ticker in self._in_event:
            return False
        if t.position is not None and self._position <= t.position:
            self.counters.replayed += 1
            return True
        t.position = self._position
        self._in_event.add(ticker)
        return False

    def process(self, frame: r.RawFrame, out: Output | None = None) -> Output:
        """Normalize one frame; append its records (and gap records) to ``out``."""
        out = Output() if out is None else out
        self.counters.frames += 1
        try:
            if markers.is_marker(frame):
                self.counters.markers += 1
                self._marker(markers.parse_marker(frame), out)
                return out
            msg = parse.parse_frame(frame.data)
        except DecodeError:
            self.counters.malformed += 1  # the raw stream keeps the frame; nothing to normalize
            self._lost(frame, out)
            return out
        ticker = msg.ticker
        if not ticker:
            self.counters.other += 1
            return out
        t = self.ticker(ticker)
        header = msg.header
        if (self._replayed(ticker, t) or self._superseded(frame, t, msg)
                or (header.seq is not None and self._duplicate(frame, t, header.sid, header.seq))):  # fmt: skip
            return out
        try:
            if isinstance(msg, parse.Delta):  # the commonest first
                self._delta(frame, msg, t, out)
            elif isinstance(msg, parse.TradePrint):
                self._trade(frame, msg, t, out)
            elif isinstance(msg, parse.Snapshot):
                self._snapshot(frame, msg, t, out)
            elif isinstance(msg, parse.Lifecycle):
                self._lifecycle(frame, msg, out)
            else:
                self.counters.other += 1
        except r.RecordError:
            # A value the parser let through but no record can hold: the frame is malformed, and the
            # ticker's book may have taken part of it, so the book is recovered like after a gap.
            self.counters.malformed += 1
            if ticker:
                self._open_gap(frame, ticker, "exchange_seq", out, sid=msg.header.sid)
        return out

    def bus_gap(self, tickers: Iterable[str], first: int, end: int, stream: str, at_ns: int,
                out: Output | None = None) -> Output:  # fmt: skip
        """Raw stream sequences ``first..end-1`` were removed unread: a ``bus`` gap for each of ``tickers``.

        Call it with the event that follows the hole (after :meth:`begin`), naming the tickers of the
        partition it came from; what the removed messages held is unknown, so each book is recovered
        like after a seq gap. A ticker whose state already includes events up to the hole's end (a
        run before this one read them) lost nothing. Tickers first seen inside the hole cannot be named.
        """
        out = Output() if out is None else out
        self.counters.bus_gaps += 1
        marker = r.RawFrame(at_ns, markers.BUS_GAP, b"")
        for ticker in tickers:
            t = self.ticker(ticker)
            if t.position is not None and t.position >= end - 1:
                continue
            self._open_gap(marker, ticker, "bus", out, expected=first, got=end, start_ns=t.last_ns or at_ns,
                           stream=stream, missing=0)  # fmt: skip
        return out

    def open_gap(self, ticker: str) -> int | None:
        """Start of ``ticker``'s open gap (its book awaits a snapshot); None when it has none or is not held here."""
        t = self._tickers.get(ticker)
        return t.gap_since if t is not None else None

    def tickers(self) -> set[str]:
        """Every ticker with state: in the store or in memory."""
        return {k.removeprefix("book:") for k in self.store if k.startswith("book:")} | set(self._tickers)

    def _superseded(self, frame: r.RawFrame, t: TickerState, msg: parse.Message | None) -> bool:
        """A frame from another connection than the one of the ticker's book, which this process holds.

        When partitions move between live workers, the old owner captures a ticker until it notices (up
        to a second), while the new owner has subscribed and got a snapshot: both connections carry the
        same exchange messages. Once the book comes from one of this process's own connections, frames
        of other processes' connections are copies: their book changes and snapshots are dropped, and so
        are their trades and lifecycle events received after that snapshot (earlier ones the new
        connection never saw: they are kept). Receive times of two hosts are compared there, so clock
        skew moves that line; a trade kept on both sides of it is still recorded once (``_trade``).
        """
        if (t.snap_conn is None or frame.connection_id == t.snap_conn or not self.is_local(t.snap_conn)
                or self.is_local(frame.connection_id)):  # fmt: skip
            return False
        if isinstance(msg, parse.Snapshot | parse.Delta) or msg is None or frame.received_ns >= t.snap_ns:
            self.counters.superseded += 1
            return True
        return False

    def _lost(self, frame: r.RawFrame, out: Output) -> None:
        """A frame about a market that cannot be normalized is a hole in that market's record.

        The capture's envelope scan named the market (``frame.ticker``) and its sequence number: the
        sequence went on, so no seq gap will say so. It becomes a gap of one message (its book may have
        missed a change, so it is recovered like after a seq gap), unless the frame is a replay or a
        duplicate that changes nothing.
        """
        ticker, seq = frame.ticker, frame.seq
        if not ticker:
            return
        t = self.ticker(ticker)
        if self._replayed(ticker, t) or self._superseded(frame, t, None):
            return
        if seq is not None and self._duplicate(frame, t, frame.sid, seq):
            return
        self._open_gap(frame, ticker, "exchange_seq", out, sid=frame.sid, expected=seq,
                       got=seq + 1 if seq is not None else None)  # fmt: skip

    def _duplicate(self, frame: r.RawFrame, t: TickerState, sid: int | None, seq: int) -> bool:
        if t.connection_id == frame.connection_id and seq <= t.seqs.get(str(sid), 0):
            self.counters.duplicates += 1
            return True
        return False

    def _marker(self, m: markers.Marker, out: Output) -> None:
        marker = r.RawFrame(m.received_ns, m.channel, b"", m.connection_id, m.sid)
        for ticker in m.tickers:
            t = self.ticker(ticker)
            if self._replayed(ticker, t) or self._superseded(marker, t, None):
                continue
            if m.channel == markers.GAP:
                self.counters.gaps += 1
                self._open_gap(marker, ticker, m.kind, out, sid=m.sid, expected=m.expected, got=m.received)
            else:
                self._open_gap(
                    marker, ticker, "disconnect", out, start_ns=min(t.last_ns or m.received_ns, m.received_ns)
                )

    def _open_gap(
        self, frame: r.RawFrame, ticker: str, kind: r.GapKind, out: Output, *,
        sid: int | None = None, expected: int | None = None, got: int | None = None, start_ns: int | None = None,
        stream: str = "", missing: int | None = None,
    ) -> None:  # fmt: skip
        t = self.ticker(ticker)
        t.book.invalidate()
        out.resync.add(ticker)
        if t.gap_since is not None:
            return  # already open: one gap until the next snapshot
        t.gap_since = start_ns if start_ns is not None else (t.last_ns or frame.received_ns)
        t.gap_kind = kind
        if missing is None:
            missing = got - expected if expected is not None and got is not None else 0
        out.records.append(r.Gap(ticker, kind, t.gap_since, frame.received_ns, None, frame.connection_id, sid,
                                 expected, got, missing, stream))  # fmt: skip

    def _close_gap(self, frame: r.RawFrame, ticker: str, t: TickerState, out: Output) -> None:
        if t.gap_since is None:
            return
        start = min(t.gap_since, frame.received_ns)
        out.records.append(
            r.Gap(ticker, t.gap_kind, start, frame.received_ns, frame.received_ns, frame.connection_id, frame.sid)  # type: ignore[arg-type]
        )
        t.gap_since = None
        t.gap_kind = ""

    @staticmethod
    def _touch(frame: r.RawFrame, t: TickerState, sid: int | None, seq: int | None) -> None:
        if t.connection_id != frame.connection_id:
            t.seqs.clear()  # sids and seqs restart on a new connection
        t.connection_id, t.sid, t.last_ns = frame.connection_id, sid, frame.received_ns
        if seq is not None:
            t.seqs[str(sid)] = seq

    def _snapshot(self, frame: r.RawFrame, msg: parse.Snapshot, t: TickerState, out: Output) -> None:
        if t.connection_id is not None and t.connection_id != frame.connection_id and t.gap_since is None:
            # The ticker was last heard of on another connection: whatever happened in between is lost.
            self._open_gap(frame, msg.ticker, "disconnect", out, start_ns=t.last_ns)
            out.resync.discard(msg.ticker)  # this snapshot is the recovery
        self._touch(frame, t, msg.header.sid, msg.header.seq)
        t.snap_conn, t.snap_ns = frame.connection_id, frame.received_ns
        t.book.snapshot(msg.yes, msg.no)
        self._close_gap(frame, msg.ticker, t, out)
        out.records.append(
            r.OrderBookUpdate(
                msg.ticker, "snapshot",
                tuple(_level(p, s) for p, s in t.book.bids()),
                tuple(_level(p, s) for p, s in t.book.asks()),
                frame.received_ns, None, msg.header.sid, msg.header.seq, frame.connection_id, False,
            )
        )  # fmt: skip

    def _delta(self, frame: r.RawFrame, msg: parse.Delta, t: TickerState, out: Output) -> None:
        header = msg.header
        self._touch(frame, t, header.sid, header.seq)
        try:
            size = t.book.apply(msg.side, msg.price_e4, msg.delta_e2)
        except BookInvalid:
            self._open_gap(frame, msg.ticker, "exchange_seq", out, sid=msg.header.sid)
            # Best effort for live clients: keep the untrusted book moving, never below zero, flagged.
            levels = t.book.yes if msg.side == "yes" else t.book.no
            size = max(0, levels.get(msg.price_e4, 0) + msg.delta_e2)
            if size:
                levels[msg.price_e4] = size
            else:
                levels.pop(msg.price_e4, None)
        level = (_level(msg.price_e4 if msg.side == "yes" else fixedpoint.ONE_DOLLAR - msg.price_e4, size),)
        bids, asks = (level, ()) if msg.side == "yes" else ((), level)
        new = _new_book_update if _ids_in_range(msg.exchange_ns, header.sid, header.seq) else r.OrderBookUpdate
        out.records.append(new(msg.ticker, "change", bids, asks, frame.received_ns, msg.exchange_ns,
                               header.sid, header.seq, frame.connection_id, not t.book.valid))  # fmt: skip

    def _trade(self, frame: r.RawFrame, msg: parse.TradePrint, t: TickerState, out: Output) -> None:
        header = msg.header
        self._touch(frame, t, header.sid, header.seq)
        # A trade both connections of a handover carried is one trade (Kalshi's trade_id names it). The
        # rule in _superseded keeps the old owner's trades received before the new owner's snapshot, but
        # the trade channel may deliver to the new owner before its book snapshot arrives, and receive
        # times of two processes only roughly order the two copies. Copies come within a second or two,
        # so a few ids per ticker, kept in memory, catch them; after a restart, replays are skipped by
        # their position instead.
        trade_id = msg.trade_id
        if trade_id:
            seen = t.trade_ids
            if trade_id in seen:
                self.counters.duplicates += 1
                return
            seen.append(trade_id)
            if len(seen) > _TRADE_IDS_KEPT:
                del seen[0]
        # _E4 and _E2 check the price and count; the parser checked the rest but the ids.
        new = _new_trade if _ids_in_range(msg.exchange_ns, header.sid, header.seq) else r.Trade
        out.records.append(
            new(msg.ticker, _E4(msg.yes_price_e4), _E2(msg.count_e2), r.side_from_kalshi(msg.taker), msg.trade_id,
                frame.received_ns, msg.exchange_ns, header.sid, header.seq, frame.connection_id,
                t.gap_since is not None, msg.block_trade)
        )  # fmt: skip

    def _lifecycle(self, frame: r.RawFrame, msg: parse.Lifecycle, out: Output) -> None:
        out.records.append(
            r.MarketStatus(
                msg.ticker, r.status_from_kalshi(msg.event_type), frame.received_ns, msg.exchange_ns,
                msg.header.sid, msg.header.seq, frame.connection_id, msg.event_type, msg.result,
                _E4(msg.settlement_e4) if msg.settlement_e4 is not None else None, msg.open_ns, msg.close_ns,
            )
        )  # fmt: skip
