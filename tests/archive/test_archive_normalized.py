"""The normalized archive: ticker-day Cap'n Proto files, manifests, day close, capnp CLI, crash safety."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import random
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from archive_helpers import DAY, ENV, SEC, T0, TICKERS, Clock, Crash, CrashingStore, Event, normalized_events

from ssmd import names
from ssmd.archive import ArchiveReader, NormalizedArchiver, zfile
from ssmd.archive.normalized import TYPES
from ssmd.archive.timefmt import NS_PER_DAY, day_of
from ssmd.codec import SCHEMA_PATH
from ssmd.records import AnyRecord, Gap, Level, MarketStatus, OrderBookUpdate, Trade
from ssmd.store import ObjectStore

BTC, GOLD = TICKERS[0], TICKERS[1]
DAY2 = DAY + dt.timedelta(days=1)


def _trade(ticker: str, at: int, n: int) -> Trade:
    return Trade(ticker, Decimal("0.5600"), Decimal("2.50"), "buy", f"id-{n}", at, at - 1, 3, n, 42)


async def test_round_trip_manifests_and_day_close(store: ObjectStore, tmp_path: Path) -> None:
    clock = Clock(T0 + 100 * SEC)
    w = NormalizedArchiver(store, env=ENV, spool_dir=tmp_path / "spool", clock=clock, close_after=60)
    book = OrderBookUpdate(GOLD, "snapshot", (Level(Decimal("0.4500"), Decimal("10.00")),),
                           (Level(Decimal("0.4700"), Decimal("3.01")),), T0 + 5 * SEC, None, 4, 1, 42)
    status = MarketStatus(BTC, "determined", T0 + 6 * SEC, T0 + 6 * SEC, event_type="determined", result="yes",
                          settlement_value=Decimal("1"))
    gap_open = Gap(GOLD, "exchange_seq", T0 + 10 * SEC, T0 + 11 * SEC, None, 42, 4, 7, 12, missing=5)
    gap_closed = dataclasses.replace(gap_open, end_ns=T0 + 70 * SEC, received_ns=T0 + 70 * SEC)
    trades = [_trade(BTC, T0 + i * SEC, i + 1) for i in range(5)]
    await w.add([*trades[:3], book, status, gap_open], (0, 1))
    await w.add([*trades[3:], gap_closed, _trade(BTC, T0 + NS_PER_DAY + SEC, 99)], (0, 2))
    assert await w.flush() == {0: 2}

    reader = ArchiveReader(store, env=ENV)
    assert await reader.records("trade", BTC, DAY) == trades
    assert await reader.records("orderbook", GOLD, DAY) == [book]
    assert await reader.records("status", BTC, DAY) == [status]
    assert await reader.records("gap", GOLD, DAY) == [gap_open, gap_closed]

    m = await reader.manifest("orderbook", DAY, GOLD)
    assert m is not None and m["status"] == "partial" and m["condition"] == "pending"
    assert m["ticker"] == GOLD and m["record_count"] == 1 and m["schema_version"] == "v1"
    assert [(g["missing"], g["end_ns"]) for g in m["gaps"]] == [(5, T0 + 70 * SEC)]  # last record of a gap wins
    index = await reader.manifest("trade", DAY)
    assert index is not None and set(index["entries"]) == {BTC} and index["entries"][BTC]["record_count"] == 5

    days = await reader.ticker_days(date=DAY)
    assert [(d.data_type, d.ticker, d.condition) for d in days] == [
        ("gap", GOLD, "pending"), ("orderbook", GOLD, "pending"), ("status", BTC, "pending"),
        ("trade", BTC, "pending")]

    clock.now = T0 + NS_PER_DAY + 61 * SEC  # day 1 is over
    await w.flush()
    by_key = {(d.data_type, d.ticker): d for d in await reader.ticker_days(date=DAY)}
    assert by_key["trade", BTC].condition == "available" and by_key["trade", BTC].quality_score == 1.0
    ob = by_key["orderbook", GOLD]
    assert ob.complete and ob.condition == "degraded" and ob.gap_count == 1
    assert ob.quality_score == pytest.approx((1 - 60 / 86400) * (1 / 6), abs=1e-6)
    index = await reader.manifest("trade", DAY)
    assert index is not None and index["status"] == "complete" and index["condition"] == "available"
    meta, _ = zfile.unpack(await store.get(names.normalized_key(ENV, "kalshi", "trade", DAY, BTC)))
    assert meta["status"] == "complete" and meta["frames"] == 1
    day2 = await reader.ticker_days(date=DAY2)
    assert [(d.data_type, d.ticker, d.status, d.record_count) for d in day2] == [("trade", BTC, "partial", 1)]


async def _run(argv: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return await asyncio.to_thread(subprocess.run, argv, input=stdin, capture_output=True, check=True)


async def test_capnp_cli_decodes_a_normalized_file(tmp_path: Path) -> None:
    from ssmd.store.local import FileStore

    store = FileStore(f"file://{tmp_path / 'store'}")
    w = NormalizedArchiver(store, env=ENV, spool_dir=tmp_path / "spool", clock=Clock(T0 + 10 * SEC))
    await w.add([_trade(GOLD, T0 + i, i + 1) for i in range(3)], (0, 1))
    await w.add([_trade(GOLD, T0 + 9, 9)], (0, 2))  # a second zstd frame
    await w.flush()
    await w.add([_trade(GOLD, T0 + 10, 10)], (0, 3))
    await w.flush()
    path = tmp_path / "store" / names.normalized_key(ENV, "kalshi", "trade", DAY, GOLD)
    plain = (await _run(["zstd", "-d", "-c", str(path)])).stdout
    out = (await _run(["capnp", "decode", str(SCHEMA_PATH), "Record"], plain)).stdout.decode()
    assert out.count("( trade = (") == 5
    assert out.count(f'ticker = "{GOLD}"') == 5 and "yesPriceE4 = 5600" in out and 'tradeId = "id-10"' in out


async def test_connection_gap_reaches_every_open_ticker_day(store: ObjectStore, tmp_path: Path) -> None:
    w = NormalizedArchiver(store, env=ENV, spool_dir=tmp_path / "spool", clock=Clock(T0 + 10 * SEC))
    await w.add([_trade(BTC, T0 + SEC, 1), _trade(GOLD, T0 + SEC, 2)], (0, 1))
    down = Gap("", "disconnect", T0 + 2 * SEC, T0 + 5 * SEC, T0 + 5 * SEC, connection_id=42)
    await w.add([down], (0, 2))
    await w.flush()
    reader = ArchiveReader(store, env=ENV)
    for ticker in (BTC, GOLD):
        assert await reader.records("gap", ticker, DAY) == [dataclasses.replace(down, ticker=ticker)]
        m = await reader.manifest("trade", DAY, ticker)
        assert m is not None and [g["kind"] for g in m["gaps"]] == ["disconnect"]


async def _assert_manifests_match_files(store: ObjectStore) -> None:
    """Every data file in the store has a manifest that describes it exactly."""
    async for info in store.list(names.normalized_prefix(ENV)):
        if info.key.endswith("/data.capnp.zst"):
            blob = await store.get(info.key)
            m = json.loads(await store.get(info.key.replace("data.capnp.zst", "manifest.json")))
            assert (m["record_count"], m["byte_size"]) == (zfile.unpack(blob)[0]["records"], len(blob)), info.key


async def _feed(w: NormalizedArchiver, events: list[Event], committed: dict[int, int], clock: Clock,
                rng: random.Random, end_ns: int, check: ObjectStore | None = None) -> bool:
    try:
        for e in events:
            if e.offset <= committed.get(e.partition, 0):
                continue
            clock.now = max(clock.now, e.at_ns)
            await w.add(e.items, e.position)
            if rng.random() < 0.2:
                positions = await w.flush()
                if check is not None:
                    await _assert_manifests_match_files(check)
                if rng.random() < 0.2:
                    return False  # died after the upload, before committing
                committed.update(positions)
            if rng.random() < 0.03:
                return False
        clock.now = end_ns
        committed.update(await w.close())
        return True
    except Crash:
        return False


async def test_crash_anywhere_keeps_every_record_exactly_once(store: ObjectStore, tmp_path: Path) -> None:
    rng = random.Random(7)
    # Smaller on S3: moto answers in ~20 ms a request. A day and a half, so a day closes on the way.
    events = normalized_events(rng, 60 if store.url.startswith("file:") else 30, NS_PER_DAY + NS_PER_DAY // 2)
    clock = Clock()
    committed: dict[int, int] = {}
    crashes = 0
    while True:
        crashing = CrashingStore(store, rng.randrange(60) if crashes < 5 else None)
        w = NormalizedArchiver(crashing, env=ENV, spool_dir=tmp_path / "spool", clock=clock, close_after=60)
        await w.resume([DAY, DAY2])
        check = store if store.url.startswith("file:") else None  # after every flush, where it is cheap
        if await _feed(w, events, committed, clock, rng, T0 + 2 * NS_PER_DAY + 120 * SEC, check):
            break
        crashes += 1
    assert crashes >= 3

    want: dict[tuple[str, str, dt.date], list[AnyRecord]] = {}
    for e in events:
        for r in e.items:
            want.setdefault((TYPES[type(r)], r.ticker, day_of(r.received_ns)), []).append(r)
    reader = ArchiveReader(store, env=ENV)
    listed = {(d.data_type, d.ticker, d.date): d for d in await reader.ticker_days()}
    assert set(listed) == set(want)
    for (kind, ticker, date), records in want.items():
        assert await reader.records(kind, ticker, date) == records  # exactly once, in input order
        d = listed[kind, ticker, date]
        assert d.complete and d.record_count == len(records)
        m = await reader.manifest(kind, date, ticker)
        assert m is not None
        gap_keys = {(g.kind, g.start_ns) for g in want.get(("gap", ticker, date), []) if isinstance(g, Gap)}
        assert {(g["kind"], g["start_ns"]) for g in m["gaps"]} == gap_keys
        blob = await store.get(names.normalized_key(ENV, "kalshi", kind, date, ticker))
        assert m["byte_size"] == len(blob) and zfile.unpack(blob)[0]["records"] == len(records)


async def test_restart_rewrites_a_manifest_lost_in_a_crash(store: ObjectStore, tmp_path: Path) -> None:
    clock = Clock(T0 + 10 * SEC)
    w = NormalizedArchiver(CrashingStore(store, puts=1), env=ENV, spool_dir=tmp_path / "spool", clock=clock)
    await w.add([_trade(BTC, T0 + SEC, 1)], (0, 1))
    with pytest.raises(Crash):
        await w.flush()  # the data file is in, its manifest is not
    reader = ArchiveReader(store, env=ENV)
    assert [(d.ticker, d.condition, d.record_count) for d in await reader.ticker_days()] == [(BTC, "pending", None)]

    w = NormalizedArchiver(store, env=ENV, spool_dir=tmp_path / "spool", clock=clock)
    await w.resume()
    await w.add([_trade(BTC, T0 + SEC, 1)], (0, 1))  # re-delivered: already in the file
    assert await w.flush() == {0: 1}
    assert [(d.ticker, d.condition, d.record_count) for d in await reader.ticker_days()] == [(BTC, "pending", 1)]
    assert await reader.records("trade", BTC, DAY) == [_trade(BTC, T0 + SEC, 1)]


async def test_a_ticker_that_cannot_be_a_key_is_dropped_not_fatal(tmp_path: Path) -> None:
    from ssmd.store.local import FileStore

    store = FileStore(f"file://{tmp_path / 'store'}")
    w = NormalizedArchiver(store, env=ENV, spool_dir=tmp_path / "spool", clock=Clock(T0 + 10 * SEC))
    await w.add([_trade("BAD/TICKER", T0 + SEC, 1), _trade(BTC, T0 + SEC, 2)], (0, 1))
    await w.add([_trade("BAD/TICKER", T0 + 2 * SEC, 3)], (0, 2))
    assert await w.flush() == {0: 2} and w.rejected == 2
    assert [d.ticker for d in await ArchiveReader(store, env=ENV).ticker_days()] == [BTC]


async def test_encoded_batches_archive_like_records(tmp_path: Path) -> None:
    from ssmd import codec
    from ssmd.store.local import FileStore

    store = FileStore(f"file://{tmp_path / 'store'}")
    w = NormalizedArchiver(store, env=ENV, spool_dir=tmp_path / "spool", clock=Clock(T0 + 10 * SEC))
    gap = Gap(BTC, "bus", T0 + SEC, T0 + 3 * SEC, T0 + 2 * SEC, missing=4, stream="s")
    batch: list[AnyRecord] = [_trade(BTC, T0 + SEC, 1), gap, _trade(GOLD, T0 + SEC, 2), _trade(BTC, T0 + SEC, 3)]
    messages = codec.split_batch(codec.encode_batch(batch))
    await w.add_encoded(messages, (0, 1), received_ns=T0 + SEC)
    await w.add_encoded(messages, (0, 1), received_ns=T0 + SEC)  # re-delivered
    await w.flush()
    reader = ArchiveReader(store, env=ENV)
    assert await reader.records("trade", BTC, DAY) == [batch[0], batch[3]]
    assert await reader.records("gap", BTC, DAY) == [gap]
    m = await reader.manifest("trade", DAY, BTC)
    assert m is not None and m["record_count"] == 2 and m["gaps"][0]["missing"] == 4


async def test_a_released_ticker_day_is_never_written_again(store: ObjectStore, tmp_path: Path) -> None:
    """Partitions moved to another writer: the old one gives their ticker-days up, and the day's close
    by the old writer leaves the new owner's files alone (it used to complete them with its own records)."""
    clock = Clock(T0 + 100 * SEC)
    old = NormalizedArchiver(store, env=ENV, spool_dir=tmp_path / "old", clock=clock, close_after=60)
    await old.add([_trade(BTC, T0 + SEC, 1), _trade(GOLD, T0 + SEC, 2)], (0, 1))
    assert await old.flush() == {0: 1}
    await old.add([_trade(GOLD, T0 + 2 * SEC, 3)], (1, 5))  # read, not uploaded: the new owner reads it again
    assert await old.release(lambda t: t != GOLD, [1]) == 1

    new = NormalizedArchiver(store, env=ENV, spool_dir=tmp_path / "new", clock=clock, close_after=60)
    await new.resume(owns=lambda t: t == GOLD)
    gold = [_trade(GOLD, T0 + 2 * SEC, 3), _trade(GOLD, T0 + 3 * SEC, 4)]
    await new.add(gold, (1, 5))
    assert await new.flush() == {1: 5}

    clock.now = T0 + NS_PER_DAY + 61 * SEC  # the day is over: the old writer completes what it holds
    assert await old.flush() == {0: 1}  # no position of the partition it gave up
    reader = ArchiveReader(store, env=ENV)
    assert await reader.records("trade", GOLD, DAY) == [_trade(GOLD, T0 + SEC, 2), *gold]
    m = await reader.manifest("trade", DAY, GOLD)
    assert m is not None and m["record_count"] == 3 and m["status"] == "partial"  # the new owner's to complete
    btc = await reader.manifest("trade", DAY, BTC)
    assert btc is not None and btc["status"] == "complete"
