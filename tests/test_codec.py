"""The Cap'n Proto codec: every record type round-trips exactly; bad bytes are DecodeErrors."""

from __future__ import annotations

import struct
import time
from decimal import Decimal
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssmd import codec
from ssmd.errors import DecodeError
from ssmd.records import (
    AnyRecord,
    Gap,
    Level,
    MarketStatus,
    OrderBookUpdate,
    RawFrame,
    Status,
    Trade,
    e2_to_size,
    e4_to_price,
)

NOW = 1_787_838_983_996_000_000
U64 = 2**64 - 1

EXAMPLES: list[AnyRecord] = [
    Trade("KXGOLDH-26AUG2711-T4615.99", Decimal("0.3600"), Decimal("136.00"), "sell",
          "d91bc706-ee49-470d-82d8-11418bda6fed", NOW + 900, NOW, sid=11, seq=2, connection_id=7),
    Trade("HIGHNY-22DEC23-B53.5", Decimal("0.0001"), Decimal("0.01"), "buy", "t-2", NOW, flagged=True,
          block_trade=True),
    OrderBookUpdate("KXGOLDH-26AUG2711-T4615.99", "snapshot",
                    bids=(Level(Decimal("0.0100"), Decimal("1410.00")),),
                    asks=(Level(Decimal("0.9800"), Decimal("2500.00")), Level(Decimal("0.9900"), Decimal("100.00"))),
                    received_ns=NOW, sid=1, seq=1, connection_id=3),
    OrderBookUpdate("KXGOLDH-26AUG2711-T4615.99", "change", bids=(Level(Decimal("0.0100"), Decimal(0)),), asks=(),
                    received_ns=NOW, exchange_ns=NOW - 5, sid=1, seq=2, connection_id=3, flagged=True),
    OrderBookUpdate("EMPTY-BOOK", "snapshot", (), (), NOW),
    MarketStatus("INXD-23SEP14-B4487", "initialized", NOW, sid=13, seq=3, event_type="created",
                 open_ns=1_694_635_200 * 10**9, close_ns=1_694_721_600 * 10**9),
    MarketStatus("INXD-23SEP14-B4487", "determined", NOW, exchange_ns=NOW, event_type="determined", result="yes",
                 settlement_value=Decimal("1.0000")),
    MarketStatus("INXD-23SEP14-B4487", "determined", NOW, settlement_value=Decimal(0)),
    Gap("KXGOLDH-26AUG2711-T4615.99", "exchange_seq", start_ns=NOW - 10, received_ns=NOW, connection_id=3, sid=1,
        expected_seq=5, received_seq=9, missing=4),
    Gap("", "disconnect", start_ns=NOW - 10**9, received_ns=NOW, end_ns=NOW, connection_id=3),
    Gap("T", "bus", start_ns=1, received_ns=2, stream="kalshi-dev-raw", missing=17),
    RawFrame(NOW, "orderbook_delta", b'{"type":"orderbook_delta","sid":1,"seq":2,"msg":{}}', 3, 1, 2,
             "KXGOLDH-26AUG2711-T4615.99", 42),
    RawFrame(NOW, "", b""),
]


@pytest.mark.parametrize("record", EXAMPLES, ids=lambda r: type(r).__name__)
def test_examples_round_trip_in_every_framing(record: AnyRecord) -> None:
    assert codec.decode(codec.encode(record)) == record
    assert codec.decode_struct(codec.encode_struct(record), type(record)) == record
    assert codec.decode_batch(codec.encode_batch([record])) == [record]


def test_batch_and_stream_keep_order_and_types() -> None:
    assert codec.decode_batch(codec.encode_batch(EXAMPLES)) == EXAMPLES
    assert codec.decode_batch(codec.encode_batch([])) == []
    stream = b"".join(codec.encode(record) for record in EXAMPLES)
    assert codec.decode_stream(stream) == EXAMPLES


def test_messages_are_standard_unpacked_capnp() -> None:
    data = codec.encode(EXAMPLES[0])
    segments = int.from_bytes(data[:4], "little") + 1
    assert segments == 1
    assert len(data) % 8 == 0
    assert int.from_bytes(data[4:8], "little") * 8 + 8 == len(data)


def test_decimal_values_come_back_exact() -> None:
    trade = codec.decode(codec.encode(EXAMPLES[0]))
    assert isinstance(trade, Trade)
    assert trade.yes_price == Decimal("0.36") and str(trade.yes_price) == "0.3600"
    assert trade.count == Decimal("136") and trade.no_price == Decimal("0.64")


# --- hypothesis: arbitrary valid records ------------------------------------------------------------

prices = st.integers(min_value=0, max_value=10_000).map(e4_to_price)
sizes = st.integers(min_value=0, max_value=2**63 - 1).map(e2_to_size)
times = st.integers(min_value=0, max_value=U64)
optional_ids = st.none() | st.integers(min_value=1, max_value=U64)
chars = st.characters(exclude_categories=["Cs"])  # lone surrogates are not text in any encoding
texts = st.text(chars, max_size=30)
tickers = st.sampled_from(["KXGOLDH-26AUG2711-T4615.99", "HIGHNY-22DEC23-B53.5", "KXBTC-25DEC31-B100000"]) | st.text(
    chars, min_size=1, max_size=40)
levels = st.builds(Level, prices, sizes)

trades = st.builds(Trade, tickers, prices, sizes, st.sampled_from(["buy", "sell"]), texts, times, optional_ids,
                   optional_ids, optional_ids, optional_ids, st.booleans(), st.booleans())
books = st.builds(OrderBookUpdate, tickers, st.sampled_from(["snapshot", "change"]),
                  st.lists(levels, max_size=6).map(tuple), st.lists(levels, max_size=6).map(tuple), times,
                  optional_ids, optional_ids, optional_ids, optional_ids, st.booleans())
statuses = st.builds(MarketStatus, tickers, st.sampled_from(get_args(Status)), times, optional_ids, optional_ids,
                     optional_ids, optional_ids, texts, texts, st.none() | prices, optional_ids, optional_ids)


@st.composite
def gaps(draw: st.DrawFn) -> Gap:
    start = draw(times)
    end = draw(st.none() | st.integers(min_value=max(start, 1), max_value=U64))
    return Gap(draw(st.just("") | tickers), draw(st.sampled_from(["exchange_seq", "seq_reset", "disconnect", "bus"])),
               start, draw(times), end, draw(optional_ids), draw(optional_ids), draw(optional_ids),
               draw(optional_ids), draw(times), draw(texts))


raws = st.builds(RawFrame, times, texts, st.binary(max_size=200), optional_ids, optional_ids, optional_ids,
                 st.just("") | tickers, optional_ids)
records = st.one_of(trades, books, statuses, gaps(), raws)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(records)
def test_any_record_round_trips(record: AnyRecord) -> None:
    assert codec.decode(codec.encode(record)) == record
    assert codec.decode_struct(codec.encode_struct(record), type(record)) == record


@FAST
@given(st.lists(records, max_size=20))
def test_any_batch_round_trips(batch: list[AnyRecord]) -> None:
    assert codec.decode_batch(codec.encode_batch(batch)) == batch


# --- bad bytes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("record", EXAMPLES[:4], ids=lambda r: type(r).__name__)
def test_every_truncation_is_a_decode_error(record: AnyRecord) -> None:
    data = codec.encode(record)
    for cut in range(0, len(data), 8):
        with pytest.raises(DecodeError):
            codec.decode(data[:cut])
    batch = codec.encode_batch([record, record])
    for cut in range(0, len(batch), 8):
        with pytest.raises(DecodeError):
            codec.decode_batch(batch[:cut])


def test_a_stream_cut_inside_a_message_is_a_decode_error() -> None:
    messages = [codec.encode(record) for record in EXAMPLES[:5]]
    stream = b"".join(messages)
    boundaries = {sum(len(m) for m in messages[:i]) for i in range(len(messages) + 1)}
    for cut in range(1, len(stream)):
        if cut in boundaries:  # a cut between messages is a shorter valid stream: manifests count records
            assert codec.decode_stream(stream[:cut]) == EXAMPLES[:sorted(boundaries).index(cut)]
        else:
            with pytest.raises(DecodeError):
                codec.decode_stream(stream[:cut])


@FAST
@given(st.binary(max_size=300))
def test_garbage_never_crashes(data: bytes) -> None:
    for decoder in (codec.decode, codec.decode_batch, codec.decode_stream,
                    lambda d: codec.decode_struct(d, OrderBookUpdate)):
        try:
            result: Any = decoder(data)
        except DecodeError:
            continue
        assert result is not None  # a lucky valid message is fine; a crash or another error is not


@FAST
@given(st.data())
def test_corrupted_bytes_decode_or_raise_decode_error(data: st.DataObject) -> None:
    original = bytearray(codec.encode_batch(EXAMPLES))
    for _ in range(data.draw(st.integers(1, 4))):
        original[data.draw(st.integers(0, len(original) - 1))] = data.draw(st.integers(0, 255))
    try:
        decoded = codec.decode_batch(bytes(original))
    except DecodeError:
        return
    assert all(isinstance(r, (Trade, OrderBookUpdate, MarketStatus, Gap, RawFrame)) for r in decoded)


def _message(struct: str, **fields: Any) -> bytes:
    message = getattr(codec.schema(), struct).new_message(**fields)
    return bytes(message.to_bytes())


@pytest.mark.parametrize(
    ("struct", "fields", "kind", "reason"),
    [
        ("Trade", {"ticker": "T", "yesPriceE4": 20_000, "countE2": 1}, Trade, "price"),
        ("Trade", {"ticker": "T", "yesPriceE4": 5_000, "countE2": -5}, Trade, "size"),
        ("Trade", {"ticker": "", "yesPriceE4": 5_000, "countE2": 100}, Trade, "empty ticker"),
        ("MarketStatus", {"ticker": "T", "settlementValueE4": 123_456}, MarketStatus, "price"),
        ("Gap", {"ticker": "T", "startNs": 10, "endNs": 5}, Gap, "before"),
        ("OrderBookUpdate", {"ticker": "T", "bids": [{"priceE4": -1, "sizeE2": 1}]}, OrderBookUpdate, "price"),
    ],
)
def test_well_formed_messages_with_impossible_values_are_decode_errors(
    struct: str, fields: dict[str, Any], kind: type[Any], reason: str
) -> None:
    with pytest.raises(DecodeError, match=reason):
        codec.decode_struct(_message(struct, **fields), kind)


def test_decode_error_says_what_and_how_big() -> None:
    with pytest.raises(DecodeError, match=r"invalid Record message \(3 bytes\)"):
        codec.decode(b"abc")


def test_encoding_something_that_is_not_a_record_is_a_type_error() -> None:
    not_a_record: Any = {"ticker": "T"}
    for encoder in (codec.encode, codec.encode_struct, lambda r: codec.encode_batch([r])):
        with pytest.raises(TypeError, match="not an ssmd record"):
            encoder(not_a_record)
    with pytest.raises(TypeError, match="not an ssmd record"):
        codec.decode_struct(codec.encode_struct(EXAMPLES[0]), dict)  # type: ignore[type-var]


def test_a_status_unknown_to_this_reader_reads_as_unknown() -> None:
    # A newer writer may append Status enumerants; this reader keeps the record and says "unknown".
    message = codec.schema().MarketStatus.new_message(ticker="T", eventType="frozen")
    message._set("status", 99)
    record = codec.decode_struct(bytes(message.to_bytes()), MarketStatus)
    assert (record.status, record.event_type) == ("unknown", "frozen")


def test_split_batch_gives_each_record_its_own_message_with_type_and_ticker() -> None:
    parts = codec.split_batch(codec.encode_batch(EXAMPLES))
    assert [part.kind for part in parts] == [type(record) for record in EXAMPLES]
    assert [part.ticker for part in parts] == [record.ticker for record in EXAMPLES]
    assert [codec.decode(part.message) for part in parts] == EXAMPLES
    assert codec.decode_stream(b"".join(part.message for part in parts)) == EXAMPLES
    with pytest.raises(DecodeError):
        codec.split_batch(b"\x00" * 7)


def test_large_valid_messages_decode() -> None:
    levels = tuple(Level(e4_to_price(100 + i), Decimal(i)) for i in range(100))
    big: list[AnyRecord] = [OrderBookUpdate("T", "snapshot", levels, levels, NOW, seq=i + 1) for i in range(50)]
    big.append(RawFrame(NOW, "orderbook_snapshot", b"x" * 1_000_000))
    data = codec.encode_batch(big)
    assert codec.decode_batch(data) == big
    assert [codec.decode(part.message) for part in codec.split_batch(data)] == big


def test_a_crafted_list_of_millions_of_empty_levels_is_refused_quickly() -> None:
    # 144 bytes claiming 5M zero-sized Level structs: Cap'n Proto allows it, a decoder must not
    # spend seconds and gigabytes on it.
    data = bytearray(codec.encode_struct(OrderBookUpdate("T", "change", (Level(Decimal("0.5"), Decimal(1)),), (), NOW)))
    schema = codec.schema().OrderBookUpdate.schema
    lo, hi = struct.unpack_from("<iI", data, 8)
    bids_pointer = 16 + ((lo >> 2) << 3) + (hi & 0xFFFF) * 8 + 8 * schema.fields["bids"].proto.slot.offset
    lo, hi = struct.unpack_from("<iI", data, bids_pointer)
    tag = bids_pointer + 8 + ((lo >> 2) << 3)
    struct.pack_into("<iI", data, tag, 5_000_000 << 2, 0)  # 5M elements of 0 words each
    struct.pack_into("<iI", data, bids_pointer, lo, 7)  # a composite list of 0 words
    started = time.perf_counter()
    with pytest.raises(DecodeError, match="traversal"):
        codec.decode_struct(bytes(data), OrderBookUpdate)
    assert time.perf_counter() - started < 1.0
