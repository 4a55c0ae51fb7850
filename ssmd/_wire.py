"""The field-by-field mapping between ssmd records and their Cap'n Proto structs (private to the codec).

Each record type has a writer (record -> struct builder) and a reader (struct reader -> record)
built once from the loaded schema, holding pycapnp field handles so the hot path never looks a
field up by name. Enums travel as their ordinals; ``None`` travels as 0 (see schemas/ssmd.capnp).

Messages from a writer that knew only the seed's fields (no fixed-point fields set) are read from
the seed's approximate fields: prices rounded to 4 decimals, sizes in whole contracts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, get_args

from ssmd.records import (
    AnyRecord,
    BookKind,
    Gap,
    GapKind,
    Level,
    MarketStatus,
    OrderBookUpdate,
    RawFrame,
    RecordError,
    Side,
    Status,
    Trade,
    e2_to_size,
    e4_to_price,
    price_to_e4,
    size_to_e2,
    unchecked_constructor,
)

_U32_MAX = (1 << 32) - 1
NO_SETTLEMENT = -1
_MEMBERS: tuple[tuple[type[Any], str], ...] = (
    (Trade, "trade"), (OrderBookUpdate, "orderBook"), (MarketStatus, "status"), (Gap, "gap"), (RawFrame, "raw"),
)

Writer = Callable[[Any, Any], None]
Reader = Callable[[Any], Any]


class EnumMap:
    """A schema enum in the records' spelling (``exchangeSeq`` <-> "exchange_seq").

    The schema is the source of truth for ordinals; a records ``Literal`` that names a value the
    schema lacks, or lacks one the schema has, is a programming error reported at load time.
    """

    def __init__(self, enum: Any, literal: Any) -> None:
        by_ordinal = sorted((ordinal, name) for name, ordinal in enum.schema.enumerants.items())
        self.names = tuple(re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() for _, name in by_ordinal)
        self.codes = {name: code for code, name in enumerate(self.names)}
        if set(self.names) != set(get_args(literal)):
            msg = f"schema enum {self.names} does not match records {get_args(literal)}"
            raise RuntimeError(msg)


_TRADE_FIELDS = (
    "timestamp", "ticker", "price", "size", "side", "tradeId", "yesPriceE4", "noPriceE4", "countE2",
    "receivedNs", "sid", "seq", "connectionId", "flagged", "blockTrade",
)
_TRADE_READ = (
    "timestamp", "ticker", "side", "tradeId", "yesPriceE4", "countE2", "receivedNs", "sid", "seq",
    "connectionId", "flagged", "blockTrade",
)
_BOOK_FIELDS = ("timestamp", "ticker", "kind", "receivedNs", "sid", "seq", "connectionId", "flagged")
_LEVEL_FIELDS = ("price", "size", "priceE4", "sizeE2")
_STATUS_FIELDS = (
    "timestamp", "ticker", "status", "receivedNs", "sid", "seq", "connectionId", "eventType", "result",
    "settlementValueE4", "openNs", "closeNs",
)
_GAP_FIELDS = (
    "ticker", "kind", "startNs", "endNs", "receivedNs", "connectionId", "sid", "expectedSeq",
    "receivedSeq", "missing", "stream",
)
_RAW_FIELDS = ("receivedNs", "connectionId", "channel", "sid", "seq", "data", "ticker", "frameNo")


def _handles(struct: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    fields = struct.schema.fields
    return tuple(fields[name] for name in names)


def _has_zero_default(handle: Any) -> bool:
    slot = handle.proto.slot
    if str(slot.type.which()) in ("text", "data", "list", "struct"):
        return True
    default = slot.defaultValue
    return not getattr(default, str(default.which()))


def _setter(handles: tuple[Any, ...]) -> Callable[[Any, tuple[Any, ...]], None]:
    # A new struct already holds every default, so a falsy value (0, False, "", b"", empty list)
    # need not be written when the field's default is zero: each skipped write saves ~0.4 us.
    # Fields with another default (settlementValueE4 = -1) are always written.
    skippable = tuple(_has_zero_default(handle) for handle in handles)

    def put(builder: Any, values: tuple[Any, ...]) -> None:
        set_field = builder._set_by_field
        for handle, value, skip_falsy in zip(handles, values, skippable, strict=True):
            if value or not skip_falsy:
                set_field(handle, value)

    return put


def _getter(handles: tuple[Any, ...]) -> Callable[[Any], list[Any]]:
    def get(reader: Any) -> list[Any]:
        get_field = reader._get_by_field
        return [get_field(handle) for handle in handles]

    return get


def check_ticker(ticker: str) -> str:
    if not ticker:
        msg = "record has an empty ticker"
        raise RecordError(msg)
    return ticker


def check_gap_span(start: int, end: int) -> None:
    if end and end < start:
        msg = f"gap endNs {end} is before startNs {start}"
        raise RecordError(msg)


def approx_size(fixed_e2: int) -> int:
    return min(fixed_e2 // 100, _U32_MAX)


def from_seed(price: float, size: int) -> tuple[int, int]:
    return round(price * 10_000), size * 100


class Tables:
    """Writers and readers for every record type, bound to one loaded schema module."""

    def __init__(self, module: Any) -> None:
        self.record_struct = module.Record
        self.batch_struct = module.Batch
        self.batch_records = _handles(module.Batch, ("records",))[0]
        self.sides = EnumMap(module.Side, Side)
        self.book_kinds = EnumMap(module.BookUpdateKind, BookKind)
        self.statuses = EnumMap(module.Status, Status)
        self.gap_kinds = EnumMap(module.GapKind, GapKind)
        self.structs: dict[type[Any], Any] = {kind: getattr(module, kind.__name__) for kind, _ in _MEMBERS}
        self.writers: dict[type[Any], Writer] = {
            Trade: self._trade_writer(), OrderBookUpdate: self._book_writer(module),
            MarketStatus: self._status_writer(), Gap: self._gap_writer(), RawFrame: self._raw_writer(),
        }
        self.readers: dict[type[Any], Reader] = {
            Trade: self._trade_reader(), OrderBookUpdate: self._book_reader(module),
            MarketStatus: self._status_reader(), Gap: self._gap_reader(), RawFrame: self._raw_reader(),
        }
        union = module.Record.schema.fields
        self.union_fields: dict[type[Any], Any] = {kind: union[name] for kind, name in _MEMBERS}
        self._by_member: dict[str, tuple[Any, Reader]] = {
            name: (union[name], self.readers[kind]) for kind, name in _MEMBERS
        }
        self._copiers: dict[str, tuple[Any, type[AnyRecord], Any]] = {
            name: (union[name], kind, self.structs[kind].schema.fields["ticker"]) for kind, name in _MEMBERS
        }

    def copy_union(self, reader: Any) -> tuple[type[AnyRecord], str, bytes]:
        """The record held by a ``Record`` reader, copied verbatim (by pycapnp, in C++) into a
        ``Record`` message of its own, with its type and ticker."""
        handle, kind, ticker = self._copiers[reader._which_str()]
        member = reader._get_by_field(handle)
        message = self.record_struct.new_message()
        message._set_by_field(handle, member)
        return kind, member._get_by_field(ticker), bytes(message.to_bytes())

    def read_union(self, reader: Any) -> AnyRecord:
        """The record held by a ``Record`` reader."""
        handle, read = self._by_member[reader._which_str()]
        record: AnyRecord = read(reader._get_by_field(handle))
        return record

    def _trade_writer(self) -> Writer:
        put = _setter(_handles(self.structs[Trade], _TRADE_FIELDS))
        codes = self.sides.codes

        def write(b: Any, r: Trade) -> None:
            yes, count = price_to_e4(r.yes_price, "yes_price"), size_to_e2(r.count, "count")
            put(b, (r.exchange_ns or 0, r.ticker, yes / 10_000, approx_size(count), codes[r.taker_side],
                    r.trade_id, yes, 10_000 - yes, count, r.received_ns, r.sid or 0, r.seq or 0,
                    r.connection_id or 0, r.flagged, r.block_trade))

        return write

    def _trade_reader(self) -> Reader:
        get = _getter(_handles(self.structs[Trade], _TRADE_READ))
        get_seed = _getter(_handles(self.structs[Trade], ("price", "size")))
        names = self.sides.names
        new = unchecked_constructor(Trade)

        def read(rd: Any) -> Trade:
            ts, ticker, side, tid, yes, count, recv, sid, seq, conn, flagged, block = get(rd)
            if count == 0:  # maybe a seed-schema writer: then only the approximate fields are set
                price, size = get_seed(rd)
                if size:
                    yes, count = from_seed(price, size)
            return new(check_ticker(ticker), e4_to_price(yes), e2_to_size(count), names[side.raw], tid, recv,
                       ts or None, sid or None, seq or None, conn or None, flagged, block)

        return read

    def _book_writer(self, module: Any) -> Writer:
        codes = self.book_kinds.codes
        put = _setter(_handles(module.OrderBookUpdate, _BOOK_FIELDS))
        bids_f, asks_f = _handles(module.OrderBookUpdate, ("bids", "asks"))
        put_level = _setter(_handles(module.Level, _LEVEL_FIELDS))

        def write_levels(b: Any, handle: Any, levels: tuple[Level, ...]) -> None:
            out = b._init_by_field(handle, len(levels))
            for i, level in enumerate(levels):
                price, size = price_to_e4(level.price), size_to_e2(level.size)
                put_level(out[i], (price / 10_000, approx_size(size), price, size))

        def write(b: Any, r: OrderBookUpdate) -> None:
            put(b, (r.exchange_ns or 0, r.ticker, codes[r.kind], r.received_ns, r.sid or 0,
                    r.seq or 0, r.connection_id or 0, r.flagged))
            write_levels(b, bids_f, r.bids)
            write_levels(b, asks_f, r.asks)

        return write

    def _book_reader(self, module: Any) -> Reader:
        names = self.book_kinds.names
        get = _getter(_handles(module.OrderBookUpdate, _BOOK_FIELDS))
        bids_f, asks_f = _handles(module.OrderBookUpdate, ("bids", "asks"))
        price_f, size_f, price_e4_f, size_e2_f = _handles(module.Level, _LEVEL_FIELDS)
        new_level = unchecked_constructor(Level)
        new = unchecked_constructor(OrderBookUpdate)

        def read_level(item: Any) -> Level:
            get_field = item._get_by_field
            price, size = get_field(price_e4_f), get_field(size_e2_f)
            if price == 0 and size == 0:  # maybe a seed-schema writer: only the approximate fields
                price, size = from_seed(get_field(price_f), get_field(size_f))
            return new_level(e4_to_price(price), e2_to_size(size))

        def read(rd: Any) -> OrderBookUpdate:
            ts, ticker, kind, recv, sid, seq, conn, flagged = get(rd)
            bids = tuple(map(read_level, rd._get_by_field(bids_f)))
            asks = tuple(map(read_level, rd._get_by_field(asks_f)))
            return new(check_ticker(ticker), names[kind.raw], bids, asks, recv, ts or None,
                       sid or None, seq or None, conn or None, flagged)

        return read

    def _status_writer(self) -> Writer:
        put = _setter(_handles(self.structs[MarketStatus], _STATUS_FIELDS))
        codes = self.statuses.codes

        def write(b: Any, r: MarketStatus) -> None:
            settlement = NO_SETTLEMENT if r.settlement_value is None else price_to_e4(r.settlement_value)
            put(b, (r.exchange_ns or 0, r.ticker, codes[r.status], r.received_ns, r.sid or 0,
                    r.seq or 0, r.connection_id or 0, r.event_type, r.result, settlement,
                    r.open_ns or 0, r.close_ns or 0))

        return write

    def _status_reader(self) -> Reader:
        get = _getter(_handles(self.structs[MarketStatus], _STATUS_FIELDS))
        names = self.statuses.names
        new = unchecked_constructor(MarketStatus)

        def read(rd: Any) -> MarketStatus:
            ts, ticker, status, recv, sid, seq, conn, event, result, settlement, open_ns, close_ns = get(rd)
            code = status.raw
            # A status appended by a newer writer reads as "unknown"; event_type still says what happened.
            name = names[code] if code < len(names) else "unknown"
            value = None if settlement == NO_SETTLEMENT else e4_to_price(settlement)
            return new(check_ticker(ticker), name, recv, ts or None, sid or None, seq or None, conn or None,
                       event, result, value, open_ns or None, close_ns or None)

        return read

    def _gap_writer(self) -> Writer:
        put = _setter(_handles(self.structs[Gap], _GAP_FIELDS))
        codes = self.gap_kinds.codes

        def write(b: Any, r: Gap) -> None:
            put(b, (r.ticker, codes[r.kind], r.start_ns, r.end_ns or 0, r.received_ns,
                    r.connection_id or 0, r.sid or 0, r.expected_seq or 0, r.received_seq or 0, r.missing,
                    r.stream))

        return write

    def _gap_reader(self) -> Reader:
        get = _getter(_handles(self.structs[Gap], _GAP_FIELDS))
        names = self.gap_kinds.names
        new = unchecked_constructor(Gap)

        def read(rd: Any) -> Gap:
            ticker, kind, start, end, recv, conn, sid, expected, received, missing, stream = get(rd)
            check_gap_span(start, end)
            return new(ticker, names[kind.raw], start, recv, end or None, conn or None, sid or None,
                       expected or None, received or None, missing, stream)

        return read

    def _raw_writer(self) -> Writer:
        put = _setter(_handles(self.structs[RawFrame], _RAW_FIELDS))

        def write(b: Any, r: RawFrame) -> None:
            put(b, (r.received_ns, r.connection_id or 0, r.channel, r.sid or 0, r.seq or 0, r.data, r.ticker,
                    r.frame_no or 0))

        return write

    def _raw_reader(self) -> Reader:
        get = _getter(_handles(self.structs[RawFrame], _RAW_FIELDS))
        new = unchecked_constructor(RawFrame)

        def read(rd: Any) -> RawFrame:
            recv, conn, channel, sid, seq, data, ticker, frame_no = get(rd)
            return new(recv, channel, data, conn or None, sid or None, seq or None, ticker, frame_no or None)

        return read
