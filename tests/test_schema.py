"""The schema file: it compiles (checked without risking the test process), it keeps the seed's
structs and ordinals, what ssmd writes is readable by the ``capnp`` tool, and seed-era messages are
readable by ssmd."""

from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import capnp
import pytest

from ssmd import codec, schema_check
from ssmd._wire import EnumMap
from ssmd.records import AnyRecord, Gap, GapKind, Level, MarketStatus, OrderBookUpdate, RawFrame, Trade
from ssmd.schema_check import SchemaError, check_schema, ensure_valid

REPO_SCHEMA = Path(__file__).parent.parent / "schemas" / "ssmd.capnp"
TICKER = "KXGOLDH-26AUG2711-T4615.99"
NOW = 1_787_838_983_996_000_000

# The seed design's schema (a public contract: names and ordinals must never change).
SEED_SCHEMA = """\
@0xabcdef1234567890;
struct Trade {
  timestamp @0 :UInt64; ticker @1 :Text; price @2 :Float64; size @3 :UInt32; side @4 :Side; tradeId @5 :Text;
}
enum Side { buy @0; sell @1; }
struct OrderBookUpdate { timestamp @0 :UInt64; ticker @1 :Text; bids @2 :List(Level); asks @3 :List(Level); }
struct Level { price @0 :Float64; size @1 :UInt32; }
struct MarketStatus { timestamp @0 :UInt64; ticker @1 :Text; status @2 :Status; }
enum Status { open @0; closed @1; halted @2; }
"""


def capnp_tool() -> str:
    path = shutil.which("capnp")
    assert path, "the capnp command-line tool (Debian package capnproto) is required"
    return path


def capnp_decode(struct: str, data: bytes) -> str:
    proc = subprocess.run([capnp_tool(), "decode", str(REPO_SCHEMA), struct], input=data, capture_output=True,
                          check=True, timeout=30)
    return proc.stdout.decode()


@pytest.fixture(scope="module")
def seed_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("seed") / "seed.capnp"
    path.write_text(SEED_SCHEMA)
    check_schema(path)  # in a child process first: a bad schema must not abort the test run
    return capnp.load(str(path))


def test_package_data_is_the_repo_schema() -> None:
    assert codec.SCHEMA_PATH.resolve() == REPO_SCHEMA.resolve()


def test_shipped_schema_compiles_in_a_child_process_and_with_the_capnp_tool() -> None:
    check_schema(REPO_SCHEMA)
    subprocess.run([capnp_tool(), "compile", "-o-", str(REPO_SCHEMA)], capture_output=True, check=True, timeout=30)


def test_file_id_is_a_real_random_id_not_the_seed_placeholder() -> None:
    file_id = re.search(r"^@(0x[0-9a-f]{16});", REPO_SCHEMA.read_text(), re.MULTILINE)
    assert file_id
    value = int(file_id.group(1), 16)
    assert value != 0xABCDEF1234567890
    assert value >> 63 == 1  # Cap'n Proto ids have the high bit set


def test_a_broken_schema_is_a_schema_error_not_an_abort(tmp_path: Path) -> None:
    broken = tmp_path / "broken.capnp"
    broken.write_text("@0xd3b1a1c6a0f0e002;\nstruct X { a @0 :UInt64; b @2 :Text; }\n")
    with pytest.raises(SchemaError, match="Skipped ordinal") as info:
        check_schema(broken)
    assert info.value.path == broken


def test_ensure_valid_checks_each_schema_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    checked: list[Path] = []
    real_check = schema_check.check_schema

    def counting_check(path: Path) -> None:
        checked.append(path)
        real_check(path)

    monkeypatch.setattr(schema_check, "check_schema", counting_check)
    ensure_valid(REPO_SCHEMA)
    ensure_valid(REPO_SCHEMA)
    assert checked == [REPO_SCHEMA]
    broken = tmp_path / "broken.capnp"
    broken.write_text("@0xd3b1a1c6a0f0e003;\nstruct X { a @0 :Nope; }\n")
    for _ in range(2):  # a failure is never cached
        with pytest.raises(SchemaError):
            ensure_valid(broken)
    assert checked == [REPO_SCHEMA, broken, broken]


def test_seed_structs_keep_their_names_ordinals_and_types(seed_schema: Any) -> None:
    ours = codec.schema()
    for struct in ("Trade", "OrderBookUpdate", "Level", "MarketStatus"):
        seed_fields = getattr(seed_schema, struct).schema.fields
        our_fields = getattr(ours, struct).schema.fields
        for name, field in seed_fields.items():
            assert name in our_fields, f"{struct}.{name} was removed"
            seed_proto, our_proto = field.proto, our_fields[name].proto
            assert our_proto.ordinal.explicit == seed_proto.ordinal.explicit, f"{struct}.{name} renumbered"
            assert our_proto.slot.type.which() == seed_proto.slot.type.which(), f"{struct}.{name} retyped"
    for enum in ("Side", "Status"):
        seed_names = getattr(seed_schema, enum).schema.enumerants
        our_names = getattr(ours, enum).schema.enumerants
        assert {k: our_names[k] for k in seed_names} == dict(seed_names), f"{enum} enumerants changed"


def test_a_seed_era_message_is_readable(seed_schema: Any) -> None:
    trade = seed_schema.Trade.new_message(timestamp=NOW, ticker=TICKER, price=0.36, size=136, side="sell",
                                          tradeId="old-1")
    decoded = codec.decode_struct(bytes(trade.to_bytes()), Trade)
    assert decoded == Trade(TICKER, Decimal("0.36"), Decimal(136), "sell", "old-1", 0, exchange_ns=NOW)
    book = seed_schema.OrderBookUpdate.new_message(
        timestamp=NOW, ticker=TICKER, bids=[{"price": 0.44, "size": 100}], asks=[{"price": 0.46, "size": 150}])
    decoded_book = codec.decode_struct(bytes(book.to_bytes()), OrderBookUpdate)
    assert decoded_book.kind == "snapshot"  # the seed's books were whole-book snapshots
    assert decoded_book.bids == (Level(Decimal("0.44"), Decimal(100)),)
    assert decoded_book.asks == (Level(Decimal("0.46"), Decimal(150)),)
    status = seed_schema.MarketStatus.new_message(timestamp=NOW, ticker=TICKER, status="halted")
    decoded_status = codec.decode_struct(bytes(status.to_bytes()), MarketStatus)
    assert (decoded_status.status, decoded_status.settlement_value) == ("halted", None)


def test_a_seed_reader_reads_what_ssmd_writes(seed_schema: Any) -> None:
    record = Trade(TICKER, Decimal("0.3600"), Decimal("136.50"), "buy", "t-1", NOW + 1, NOW)
    with seed_schema.Trade.from_bytes(codec.encode_struct(record)) as old:
        assert (old.ticker, old.price, old.size, old.side, old.timestamp) == (TICKER, 0.36, 136, "buy", NOW)


def test_capnp_tool_decodes_a_trade_written_by_ssmd() -> None:
    record = Trade(TICKER, Decimal("0.3600"), Decimal("136.25"), "sell", "d91bc706", NOW + 900, NOW, sid=11, seq=2,
                   connection_id=7)
    text = capnp_decode("Trade", codec.encode_struct(record))
    for expected in (f'ticker = "{TICKER}"', "yesPriceE4 = 3600", "noPriceE4 = 6400", "countE2 = 13625",
                     "side = sell", f"timestamp = {NOW}", f"receivedNs = {NOW + 900}", "seq = 2", "size = 136",
                     "price = 0.36"):
        assert expected in text, f"{expected!r} not in {text}"


def test_capnp_tool_decodes_an_archive_stream_and_a_batch() -> None:
    records: list[AnyRecord] = [
        OrderBookUpdate(TICKER, "change", (Level(Decimal("0.0100"), Decimal("10.00")),), (), NOW, sid=1, seq=2),
        MarketStatus(TICKER, "determined", NOW, event_type="determined", result="yes",
                     settlement_value=Decimal("1")),
        Gap(TICKER, "exchange_seq", start_ns=NOW - 5, received_ns=NOW, expected_seq=5, received_seq=9, missing=4),
        RawFrame(NOW, "trade", b'{"type":"trade"}', 3, 11, 2, TICKER, 1),
    ]
    stream = capnp_decode("Record", b"".join(codec.encode(r) for r in records))
    for expected in ("orderBook = (", "kind = change", "priceE4 = 100, sizeE2 = 1000", "status = determined",
                     'result = "yes"', "settlementValueE4 = 10000", "kind = exchangeSeq", "missing = 4",
                     'channel = "trade"', 'data = "{\\"type\\":\\"trade\\"}"', "frameNo = 1"):
        assert expected in stream, f"{expected!r} not in {stream}"
    batch = capnp_decode("Batch", codec.encode_batch(records))
    assert batch.count("ticker = ") == len(records)


def test_schema_enums_are_the_source_of_record_vocabularies() -> None:
    gap_kinds = EnumMap(codec.schema().GapKind, GapKind)
    assert gap_kinds.names == ("exchange_seq", "seq_reset", "disconnect", "bus")
    assert gap_kinds.codes["disconnect"] == 2
    with pytest.raises(RuntimeError, match="does not match"):
        EnumMap(codec.schema().Side, Literal["buy", "sell", "hold"])
