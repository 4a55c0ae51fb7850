"""The hand-written codec (ssmd.fastwire) against pycapnp, the reference: same records both ways,
same bytes where pycapnp writes one segment, readable by the capnp tool, and on any bytes either the
reference's result or the reference's DecodeError."""

from __future__ import annotations

import struct
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import capnp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_codec import EXAMPLES, FAST, records

from ssmd import codec
from ssmd.errors import DecodeError
from ssmd.fastwire import layout
from ssmd.fastwire.split import split
from ssmd.records import AnyRecord, Level, OrderBookUpdate, RawFrame, Trade
from ssmd.schema_check import check_schema

REPO_SCHEMA = Path(__file__).parent.parent / "schemas" / "ssmd.capnp"
NOW = 1_787_838_983_996_000_000
TICKER = "KXGOLDH-26AUG2711-T4615.99"
FRAME = b'{"type":"trade","sid":11,"seq":2,"msg":{"market_ticker":"KXGOLDH-26AUG2711-T4615.99","count_fp":"136.00"}}'


# Lists of records are slow to generate; fewer examples keep this file within its time budget.
LISTS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fast_batch(data: bytes) -> list[AnyRecord] | None:
    return codec._fast().reader.batch(data)


def single_segment(data: bytes) -> bool:
    segments_minus_one: int = struct.unpack_from("<I", data)[0]
    return segments_minus_one == 0


def raw_frames(n: int) -> list[AnyRecord]:
    return [RawFrame(NOW + i, "trade", FRAME, 3, 11, i + 1, TICKER, i + 1) for i in range(n)]


@LISTS
@given(st.lists(records, max_size=12))
def test_fast_and_reference_codecs_agree_both_ways(batch: list[AnyRecord]) -> None:
    fast, reference = codec.encode_batch(batch), codec.reference_encode_batch(batch)
    assert codec.reference_decode_batch(fast) == batch
    if single_segment(reference):
        assert fast == reference
        assert fast_batch(reference) == batch  # read by the fast path, not handed back to pycapnp
    assert codec.decode_batch(reference) == batch


@LISTS
@given(st.lists(records, max_size=8))
def test_a_batch_and_its_struct_messages_come_from_one_encoding(batch: list[AnyRecord]) -> None:
    data, structs = codec.encode_batch_and_structs(batch)
    assert data == codec.encode_batch(batch)
    assert structs == [codec.encode_struct(record) for record in batch]
    assert [codec.reference_decode_struct(message, type(record)) for message, record in zip(structs, batch,
                                                                                            strict=True)] == batch


@FAST
@given(records)
def test_fast_and_reference_record_messages_agree(record: AnyRecord) -> None:
    fast = codec.encode(record)
    assert fast == codec.reference_encode(record)
    assert codec.reference_decode(fast) == record
    assert codec._fast().reader.record(fast) == record
    own = codec.encode_struct(record)
    assert own == codec.reference_encode_struct(record)
    assert codec.reference_decode_struct(own, type(record)) == record
    assert codec._fast().reader.struct(own, type(record)) == record


@LISTS
@given(st.lists(records, max_size=8))
def test_split_batch_copies_what_pycapnp_copies(batch: list[AnyRecord]) -> None:
    data = codec.encode_batch(batch)
    parts = split(data, codec.RecordMessage)
    reference = codec.reference_split_batch(data)
    if single_segment(codec.reference_encode_batch(batch)):
        assert parts == reference
    assert [codec.reference_decode(part.message) for part in codec.split_batch(data)] == batch
    stream = b"".join(part.message for part in codec.split_batch(data))
    assert codec._fast().reader.stream(stream) == codec.reference_decode_stream(stream) == batch


def test_multi_segment_messages_from_pycapnp_decode_through_the_reference() -> None:
    batch = raw_frames(100)
    reference = codec.reference_encode_batch(batch)
    assert not single_segment(reference)  # pycapnp starts a new segment after 8 KiB
    assert fast_batch(reference) is None
    assert codec.decode_batch(reference) == batch
    fast = codec.encode_batch(batch)
    assert single_segment(fast) and fast_batch(fast) == batch
    assert codec.reference_decode_batch(fast) == batch


def capnp_decode(struct_name: str, data: bytes) -> str:
    proc = subprocess.run(["capnp", "decode", str(REPO_SCHEMA), struct_name], input=data, capture_output=True,
                          check=True, timeout=30)
    return proc.stdout.decode()


def test_the_capnp_tool_reads_fast_messages_as_it_reads_pycapnp_ones() -> None:
    mixed = EXAMPLES * 3
    big = raw_frames(200)
    assert capnp_decode("Batch", codec.encode_batch(mixed)) == capnp_decode(
        "Batch", codec.reference_encode_batch(mixed))
    text = capnp_decode("Batch", codec.encode_batch(big))
    assert text == capnp_decode("Batch", codec.reference_encode_batch(big))  # one segment vs several
    assert text.count("frameNo = ") == 200 and "frameNo = 200" in text
    stream = b"".join(codec.encode(record) for record in EXAMPLES)
    assert capnp_decode("Record", stream) == capnp_decode(
        "Record", b"".join(codec.reference_encode(record) for record in EXAMPLES))


# --- bad bytes: the fast reader never raises, and the codec answers what the reference answers -----


def reference_result(data: bytes) -> list[AnyRecord] | str:
    try:
        return codec.reference_decode_batch(data)
    except DecodeError as e:
        return str(e)


def codec_result(data: bytes) -> list[AnyRecord] | str:
    try:
        return codec.decode_batch(data)
    except DecodeError as e:
        return str(e)


def test_every_truncation_falls_back_to_the_reference_error() -> None:
    data = codec.encode_batch(EXAMPLES + raw_frames(3))
    for cut in range(len(data)):
        assert fast_batch(data[:cut]) is None
        with pytest.raises(DecodeError):
            codec.decode_batch(data[:cut])


@FAST
@given(st.binary(max_size=400))
def test_random_bytes_give_the_reference_answer(data: bytes) -> None:
    assert codec_result(data) == reference_result(data)


@FAST
@given(st.data())
def test_corrupted_messages_give_the_reference_answer(data: st.DataObject) -> None:
    message = bytearray(codec.encode_batch([*EXAMPLES[:4], *EXAMPLES[-2:]]))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(message) - 1))
        message[at] = data.draw(st.sampled_from([0, 1, 0xFF, message[at] ^ 1, message[at] ^ 0x80]))
    assert codec_result(bytes(message)) == reference_result(bytes(message))


def split_result(data: bytes, split: Any) -> list[tuple[Any, str, AnyRecord | str]] | str:
    def content(message: bytes) -> AnyRecord | str:
        try:
            return codec.reference_decode(message)
        except DecodeError:
            return "invalid"

    try:
        return [(part.kind, part.ticker, content(part.message)) for part in split(data)]
    except DecodeError as e:
        return str(e)


@FAST
@given(st.data())
def test_corrupted_splits_streams_and_structs_read_as_the_reference_does(data: st.DataObject) -> None:
    batch = [*EXAMPLES[:4], *EXAMPLES[-2:]]
    message = bytearray(codec.encode_batch(batch))
    stream = bytearray(b"".join(codec.encode(record) for record in batch))
    for target in (message, stream):
        for _ in range(data.draw(st.integers(1, 3))):
            target[data.draw(st.integers(0, len(target) - 1))] = data.draw(st.integers(0, 255))
    assert split_result(bytes(message), codec.split_batch) == split_result(bytes(message),
                                                                          codec.reference_split_batch)
    own = bytearray(codec.encode_struct(batch[0]))
    own[data.draw(st.integers(0, len(own) - 1))] = data.draw(st.integers(0, 255))
    try:
        alone: AnyRecord | str = codec.reference_decode_struct(bytes(own), Trade)
    except DecodeError as e:
        alone = str(e)
    try:
        assert codec.decode_struct(bytes(own), Trade) == alone
    except DecodeError as e:
        assert str(e) == alone
    try:
        expected: list[AnyRecord] | str = codec.reference_decode_stream(bytes(stream))
    except DecodeError as e:
        expected = str(e)
    try:
        assert codec.decode_stream(bytes(stream)) == expected
    except DecodeError as e:
        assert str(e) == expected


def _rewrite_pointer(data: bytes, word: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into("<Q", out, 8 + 8 * word, value)
    return bytes(out)


def test_aliased_records_are_left_to_the_reference_and_its_traversal_limit() -> None:
    # Element 1's pointer aimed at element 0's struct: valid Cap'n Proto, but a reader that follows
    # it could be made to decode one big object many times. The fast reader refuses to go back.
    frames = [RawFrame(NOW, "trade", b"x" * 4000), RawFrame(NOW, "trade", b"y")]
    data = codec.encode_batch(frames)
    # Words: 0 root, 1 Batch, 2 list tag, 3-4 element 0 (discriminant, pointer), 5-6 element 1.
    element0, element1 = struct.unpack_from("<QQ", data, 8 + 8 * 3), struct.unpack_from("<QQ", data, 8 + 8 * 5)
    assert element0[0] == element1[0] == 4  # both are RawFrames
    offset0 = struct.unpack_from("<i", data, 8 + 8 * 4)[0] >> 2
    aliased = _rewrite_pointer(data, 6, (offset0 - 2) << 2 | (element0[1] & ~0xFFFFFFFF))
    assert fast_batch(aliased) is None
    assert codec.decode_batch(aliased) == [frames[0], frames[0]]  # pycapnp reads it, within its limit


def test_a_crafted_huge_list_is_refused_without_work() -> None:
    # The Batch list claims 2**27 elements (2**28 words) in a 32-byte message.
    data = _rewrite_pointer(codec.encode_batch([]), 1, 1 | (7 | 1 << 28 << 3) << 32)
    data = _rewrite_pointer(data, 2, 1 << 27 << 2 | 0x10001 << 32)
    assert fast_batch(data) is None
    with pytest.raises(DecodeError):
        codec.decode_batch(data)


def test_seed_era_levels_and_trades_are_converted_by_the_reference() -> None:
    module = codec.schema()
    message = module.Batch.new_message()
    items = message.init("records", 2)
    items[0].init("trade").from_dict({"ticker": "T", "price": 0.56, "size": 3})
    book = items[1].init("orderBook")
    book.ticker = "T"
    book.init("bids", 1)[0].from_dict({"price": 0.25, "size": 7})
    data = bytes(message.to_bytes())
    assert fast_batch(data) is None
    trade, update = codec.decode_batch(data)
    assert isinstance(trade, Trade) and (trade.yes_price, trade.count) == (Decimal("0.56"), Decimal(3))
    assert isinstance(update, OrderBookUpdate) and update.bids == (Level(Decimal("0.25"), Decimal(7)),)


def test_non_records_are_type_errors_as_before() -> None:
    not_a_record: Any = object()
    with pytest.raises(TypeError, match="not an ssmd record"):
        codec.encode_batch([EXAMPLES[0], not_a_record])
    with pytest.raises(TypeError, match="not an ssmd record"):
        codec.encode(not_a_record)
    with pytest.raises(TypeError, match="not an ssmd record"):
        codec.encode_batch_and_structs([not_a_record])


def test_layouts_match_the_schema_and_a_new_field_is_caught(tmp_path: Path) -> None:
    layout.verify(codec.schema())
    changed = tmp_path / "changed.capnp"
    text = REPO_SCHEMA.read_text().replace("  blockTrade @14 :Bool;", "  blockTrade @14 :Bool;\n  venue @15 :UInt16;")
    # Another file id: pycapnp aborts when two loaded schemas share one.
    changed.write_text(text.replace("@0x9b0d8c71cc62d5d8;", "@0xb54ab3364333f0d1;"))
    check_schema(changed)  # compile in a child first: pycapnp aborts on a bad schema
    with pytest.raises(RuntimeError, match="layout of Trade"):
        layout.verify(capnp.load(str(changed)))
