"""Hand-written Cap'n Proto reader for ssmd ``Batch`` and ``Record`` messages.

It reads the canonical shape that :mod:`ssmd.fastwire.encode` and pycapnp write for a message that
fits one segment: every struct exactly this schema's size, every text a NUL-terminated byte list,
every list of levels or records a composite list, and every object placed after the objects before
it (each byte of the segment is read at most once, so work and allocation are linear in the size of
the message, whatever its pointers claim). It checks every bound and every value the reference
decoder checks.

Anything else (several segments, far pointers, an older or newer struct size, aliased or
out-of-order objects, a seed-era message, a malformed message, a value no record can hold) makes
the reader answer ``None``, never raise: the codec then runs the reference (pycapnp) decoder, which
either reads the message or raises the precise :class:`ssmd.errors.DecodeError`. So the two paths
cannot disagree on a message the fast one reads, and only the reference one reports errors.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from ssmd.fastwire import layout
from ssmd.fastwire.segment import (
    NO_LEVELS,
    PRICES,
    SEGMENT,
    SIZES,
    NotFast,
    elements_of,
    price_of,
    read_data,
    read_levels,
    read_text,
    root,
    size_of,
)
from ssmd.records import (
    AnyRecord,
    Gap,
    Level,
    MarketStatus,
    OrderBookUpdate,
    RawFrame,
    Trade,
    unchecked_constructor,
)

_ELEMENT = struct.Struct("<H6xiHH")  # a Record in a list: discriminant, then its member's struct pointer
_TRADE = struct.Struct(layout.TRADE.fmt + "iIiI")
_BOOK = struct.Struct(layout.BOOK.fmt + "iIiIiI")
_STATUS = struct.Struct(layout.STATUS.fmt + "iIiIiI")
_GAP = struct.Struct(layout.GAP.fmt + "iIiI")
_RAW = struct.Struct(layout.RAW.fmt + "iIiIiI")

_new_trade = unchecked_constructor(Trade)
_new_book = unchecked_constructor(OrderBookUpdate)
_new_status = unchecked_constructor(MarketStatus)
_new_gap = unchecked_constructor(Gap)
_new_raw = unchecked_constructor(RawFrame)

_KINDS = (Trade, OrderBookUpdate, MarketStatus, Gap, RawFrame)  # by union discriminant (layout.UNION_MEMBERS)
Read = Callable[[bytes, int, int, int], tuple[Any, int]]


class Reader:
    """Reads records from messages; enum names come from the schema (see :class:`ssmd._wire.EnumMap`)."""

    def __init__(self, sides: Sequence[str], book_kinds: Sequence[str], statuses: Sequence[str],
                 gap_kinds: Sequence[str]) -> None:
        self._sides, self._book_kinds, self._statuses, self._gap_kinds = sides, book_kinds, statuses, gap_kinds
        # Indexed by the Record union's discriminant (layout.UNION_MEMBERS).
        self._members: tuple[Read, ...] = (self._trade, self._book, self._status, self._gap, self._raw)

    def batch(self, data: bytes) -> list[AnyRecord] | None:
        """The records of a ``Batch`` message, or None if the reference decoder must read it."""
        try:
            return self._batch(data)
        except Exception:  # any surprise in untrusted bytes: the reference decoder judges
            return None

    def record(self, data: bytes) -> AnyRecord | None:
        """The record of a ``Record`` message, or None if the reference decoder must read it."""
        try:
            buf, at, dw, pc = root(data)
            if dw != 1 or pc != 1:
                raise NotFast
            which, lo, mdw, mpc = _ELEMENT.unpack_from(buf, at)
            return self._member(buf, which, lo, mdw, mpc, at + 8, at + 16)[0]
        except Exception:  # as in batch
            return None

    def struct(self, data: bytes, kind: type[Any]) -> AnyRecord | None:
        """The record of type ``kind`` whose struct is the root of ``data``, or None if the reference
        decoder must read it."""
        try:
            buf, at, dw, pc = root(data)
            record: AnyRecord = self._members[_KINDS.index(kind)](buf, at, dw, pc)[0]
            return record
        except Exception:  # as in batch
            return None

    def stream(self, data: bytes) -> list[AnyRecord] | None:
        """The records of concatenated ``Record`` messages, or None if the reference must read them."""
        records = []
        at = 0
        while at < len(data):
            if len(data) - at < 8:
                return None
            count_minus_one, words = struct.unpack_from("<II", data, at)
            end = at + SEGMENT + 8 * words
            record = None if count_minus_one else self.record(data[at:end])
            if record is None:
                return None
            records.append(record)
            at = end
        return records

    def _batch(self, data: bytes) -> list[AnyRecord]:
        buf, elements, cursor = elements_of(data)
        members, size, unpack_raw, new_raw = self._members, len(buf), _RAW.unpack_from, _new_raw
        records: list[AnyRecord] = []
        append = records.append
        pointer = elements - 8  # the position of each element's pointer word
        for which, lo, dw, pc in _ELEMENT.iter_unpack(memoryview(buf)[elements:cursor]):
            pointer += 16
            at = pointer + 8 + (lo >> 2) * 8
            if lo & 3 or at < cursor:
                raise NotFast  # not a struct pointer, or an object before the ones already read
            if which != 4 or dw != 5 or pc != 3:
                record, cursor = members[which](buf, at, dw, pc)
                append(record)
                continue
            # A RawFrame (every record of the raw stream), read inline: read_text and read_data by hand.
            recv, conn, sid, seq, frame_no, c_lo, c_hi, d_lo, d_hi, t_lo, t_hi = unpack_raw(buf, at)
            cursor = at + 64
            channel = ticker = ""
            data = b""
            if c_lo or c_hi:
                start = at + 48 + (c_lo >> 2) * 8
                end = start + (c_hi >> 3)
                if c_lo & 3 != 1 or c_hi & 7 != 2 or start < cursor or end > size or end == start or buf[end - 1]:
                    raise NotFast
                channel = buf[start:end - 1].decode()
                cursor = (end + 7) & -8
            if d_lo or d_hi:
                start = at + 56 + (d_lo >> 2) * 8
                end = start + (d_hi >> 3)
                if d_lo & 3 != 1 or d_hi & 7 != 2 or start < cursor or end > size:
                    raise NotFast
                data = buf[start:end]
                cursor = (end + 7) & -8
            if t_lo or t_hi:
                start = at + 64 + (t_lo >> 2) * 8
                end = start + (t_hi >> 3)
                if t_lo & 3 != 1 or t_hi & 7 != 2 or start < cursor or end > size or end == start or buf[end - 1]:
                    raise NotFast
                ticker = buf[start:end - 1].decode()
                cursor = (end + 7) & -8
            append(new_raw(recv, channel, data, conn or None, sid or None, seq or None, ticker, frame_no or None))
        return records

    def _member(self, buf: bytes, which: int, lo: int, dw: int, pc: int, pointer: int,
                cursor: int) -> tuple[AnyRecord, int]:
        at = pointer + 8 + (lo >> 2) * 8
        if lo & 3 or at < cursor:
            raise NotFast
        record: AnyRecord
        record, cursor = self._members[which](buf, at, dw, pc)
        return record, cursor

    # Each member reader reads the struct at byte ``at`` (its section sizes ``dw``, ``pc`` must be
    # this schema's: a null member or another version goes to the reference) and the objects it
    # points to, which must follow it; it returns the record and the position after its objects.
    # unpack_from raises struct.error for a struct past the end of the segment.

    def _raw(self, buf: bytes, at: int, dw: int, pc: int) -> tuple[RawFrame, int]:
        if dw != 5 or pc != 3:
            raise NotFast
        recv, conn, sid, seq, frame_no, c_lo, c_hi, d_lo, d_hi, t_lo, t_hi = _RAW.unpack_from(buf, at)
        channel, cursor = read_text(buf, at + 40, c_lo, c_hi, at + 64)
        data, cursor = read_data(buf, at + 48, d_lo, d_hi, cursor)
        ticker, cursor = read_text(buf, at + 56, t_lo, t_hi, cursor)
        return _new_raw(recv, channel, data, conn or None, sid or None, seq or None, ticker, frame_no or None), cursor

    def _trade(self, buf: bytes, at: int, dw: int, pc: int) -> tuple[Trade, int]:
        if dw != 10 or pc != 2:
            raise NotFast
        (ts, _, size, side, flags, yes, _, count, recv, sid, seq, conn, k_lo, k_hi, i_lo,
         i_hi) = _TRADE.unpack_from(buf, at)
        if count == 0 and size:
            raise NotFast  # a seed-era writer's approximate fields: the reference converts them
        # The texts, as read_text reads them (by hand: a call costs as much as the checks). The
        # ticker cannot be empty, so its pointer cannot be null.
        start = at + 88 + (k_lo >> 2) * 8
        end = start + (k_hi >> 3)
        if k_lo & 3 != 1 or k_hi & 7 != 2 or start < at + 96 or end > len(buf) or end <= start + 1 or buf[end - 1]:
            raise NotFast
        ticker = buf[start:end - 1].decode()
        trade_id = ""
        if i_lo or i_hi:
            cursor = (end + 7) & -8
            start = at + 96 + (i_lo >> 2) * 8
            end = start + (i_hi >> 3)
            if i_lo & 3 != 1 or i_hi & 7 != 2 or start < cursor or end > len(buf) or end == start or buf[end - 1]:
                raise NotFast
            trade_id = buf[start:end - 1].decode()
        cursor = (end + 7) & -8
        if not 0 <= yes <= 10_000:
            raise NotFast
        return _new_trade(ticker, PRICES[yes], SIZES.get(count) or size_of(count), self._sides[side], trade_id, recv,
                          ts or None, sid or None, seq or None, conn or None, bool(flags & 1),
                          bool(flags & 2)), cursor

    def _book(self, buf: bytes, at: int, dw: int, pc: int) -> tuple[OrderBookUpdate, int]:
        if dw != 6 or pc != 3:
            raise NotFast
        ts, kind, flags, recv, sid, seq, conn, k_lo, k_hi, b_lo, b_hi, a_lo, a_hi = _BOOK.unpack_from(buf, at)
        start = at + 56 + (k_lo >> 2) * 8  # the ticker, as in _trade
        end = start + (k_hi >> 3)
        if k_lo & 3 != 1 or k_hi & 7 != 2 or start < at + 72 or end > len(buf) or end <= start + 1 or buf[end - 1]:
            raise NotFast
        ticker = buf[start:end - 1].decode()
        cursor = (end + 7) & -8
        bids, cursor = read_levels(buf, at + 56, b_lo, b_hi, cursor)
        asks: tuple[Level, ...]
        tag = at + 72 + (a_lo >> 2) * 8
        if a_hi == 7 and a_lo & 3 == 1 and tag >= cursor and buf[tag:tag + 8] == NO_LEVELS:
            asks, cursor = (), tag + 8  # a change on the bid side only: an empty list, read by hand
        else:
            asks, cursor = read_levels(buf, at + 64, a_lo, a_hi, cursor)
        return _new_book(ticker, self._book_kinds[kind], bids, asks, recv, ts or None, sid or None, seq or None,
                         conn or None, bool(flags & 1)), cursor

    def _status(self, buf: bytes, at: int, dw: int, pc: int) -> tuple[MarketStatus, int]:
        if dw != 9 or pc != 3:
            raise NotFast
        (ts, status, recv, sid, seq, conn, settlement, open_ns, close_ns, k_lo, k_hi, e_lo, e_hi, r_lo,
         r_hi) = _STATUS.unpack_from(buf, at)
        ticker, cursor = read_text(buf, at + 72, k_lo, k_hi, at + 96)
        event, cursor = read_text(buf, at + 80, e_lo, e_hi, cursor)
        result, cursor = read_text(buf, at + 88, r_lo, r_hi, cursor)
        settlement ^= layout.SETTLEMENT_DEFAULT
        if not ticker:
            raise NotFast
        # A status appended by a newer writer reads as "unknown", as in the reference reader.
        name = self._statuses[status] if status < len(self._statuses) else "unknown"
        value = None if settlement == layout.SETTLEMENT_DEFAULT else price_of(settlement)
        return _new_status(ticker, name, recv, ts or None, sid or None, seq or None, conn or None, event, result,
                           value, open_ns or None, close_ns or None), cursor

    def _gap(self, buf: bytes, at: int, dw: int, pc: int) -> tuple[Gap, int]:
        if dw != 9 or pc != 2:
            raise NotFast
        (kind, start, end, recv, conn, sid, expected, received, missing, k_lo, k_hi, s_lo,
         s_hi) = _GAP.unpack_from(buf, at)
        ticker, cursor = read_text(buf, at + 72, k_lo, k_hi, at + 88)
        stream, cursor = read_text(buf, at + 80, s_lo, s_hi, cursor)
        if end and end < start:
            raise NotFast
        return _new_gap(ticker, self._gap_kinds[kind], start, recv, end or None, conn or None, sid or None,
                        expected or None, received or None, missing, stream), cursor
