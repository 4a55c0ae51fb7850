"""Issue 5: every injected exchange fault yields the right gap record and a recovered book.

Simulator (in process, rate 0: nothing moves until the test steps it) -> ssmd app in process -> real
nats-server. After each fault, the normalized stream must hold the gap the fault implies, every record
between a gap and its recovery snapshot must be ``flagged`` (and no other), and every ticker's book,
rebuilt from the normalized updates, must equal the simulator's ground truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipeline_helpers import read_settled, running, settings_for, truth_book, wait_for, yes_book

from ssmd import records as r
from ssmd.app import AppContext, topic_name
from ssmd.devstack import NatsServer
from ssmd.kalshi.protocol import ErrorCode
from ssmd.settings import Settings
from ssmd.sim.config import FaultConfig
from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import test_config


@dataclass
class Run:
    sim: Simulator
    ctx: AppContext
    settings: Settings
    nats_url: str

    @property
    def counters(self) -> Any:
        return self.ctx.services["normalizer"].counters

    @property
    def capture(self) -> Any:
        return self.ctx.services["capture"]

    def sent(self) -> int:
        return sum(len(v) for v in self.sim.ground_truth.sent.values())

    def sent_of_type(self, type_: str) -> int:
        needle = f'"type":"{type_}"'
        return sum(f.text.count(needle) for v in self.sim.ground_truth.sent.values() for f in v)

    async def settle(self, steps: int = 0) -> None:
        """Run ``steps`` model steps, then wait until the normalizer has seen every frame sent so far."""
        for _ in range(steps // 20):
            await self.sim.step(20)
        if steps % 20:
            await self.sim.step(steps % 20)
        c = self.counters
        await wait_for(lambda: c.frames - c.markers >= self.sent(), 30, f"{self.sent()} frames normalized")

    async def normalized(self) -> list[r.AnyRecord]:
        return await read_settled(self.nats_url, topic_name(self.settings.env, "normalized"), quiet=0.2)

    async def raw(self) -> list[r.AnyRecord]:
        return await read_settled(self.nats_url, topic_name(self.settings.env, "raw"), quiet=0.2)

    async def recovered(self) -> list[r.AnyRecord]:
        """Step until every gap opened so far is closed by a snapshot; returns the normalized records.

        Gives up after 60 s, explaining why, well before the test's timeout would stop it silently.
        """
        deadline = time.monotonic() + 60
        gaps: list[r.Gap] = []
        while time.monotonic() < deadline:
            await self.settle(5)
            records = await self.normalized()
            gaps = [x for x in records if isinstance(x, r.Gap)]
            if gaps and {g.ticker for g in gaps if g.end_ns is None} <= {g.ticker for g in gaps if g.end_ns}:
                return records
        # Say why, so that a rare failure explains itself: which tickers, what the pipeline counted.
        still_open = {g.ticker for g in gaps if g.end_ns is None} - {g.ticker for g in gaps if g.end_ns}
        msg = (f"gaps were not closed by recovery snapshots: open on {sorted(still_open)}; gaps {gaps}; "
               f"normalizer {self.counters}; resyncs wanted {self.capture.core.resync_wanted}; "
               f"snapshots sent {self.sent_of_type('orderbook_snapshot')}")  # fmt: skip
        raise AssertionError(msg)


@contextlib.asynccontextmanager
async def pipeline(nats_server: NatsServer, tmp_path: Path, markets: int = 6, seed: int = 5,
                   faults: FaultConfig | None = None, sim_options: dict[str, Any] | None = None,
                   **settings: Any) -> AsyncIterator[Run]:  # fmt: skip
    config = test_config(markets=markets, seed=seed, faults=faults or FaultConfig(), **(sim_options or {}))
    async with Simulator(config, key_path=tmp_path / "key.pem") as sim:
        s = settings_for(sim, nats_server.url, tmp_path, **settings)
        async with running(s) as ctx:
            run = Run(sim, ctx, s, nats_server.url)
            await wait_for(lambda: run.sent_of_type("orderbook_snapshot") >= markets, 20, "first snapshots")
            await run.settle()
            yield run


# -- checks shared by every fault ----------------------------------------------------------------------


def by_ticker(records: list[r.AnyRecord]) -> dict[str, list[r.AnyRecord]]:
    out: dict[str, list[r.AnyRecord]] = defaultdict(list)
    for rec in records:
        if isinstance(rec, r.Gap | r.OrderBookUpdate | r.Trade):
            out[rec.ticker].append(rec)
    return out


def assert_books_equal_truth(records: list[r.AnyRecord], sim: Simulator) -> None:
    for ticker, recs in by_ticker(records).items():
        updates = [x for x in recs if isinstance(x, r.OrderBookUpdate)]
        assert updates[0].kind == "snapshot", ticker
        assert yes_book(updates) == truth_book(sim, ticker), ticker


def assert_flagged_exactly_inside_gaps(records: list[r.AnyRecord]) -> None:
    """Per ticker, in stream order: records after an open gap and before its closing snapshot are flagged."""
    for ticker, recs in by_ticker(records).items():
        open_gap = False
        for rec in recs:
            if isinstance(rec, r.Gap):
                open_gap = rec.end_ns is None
            else:
                assert isinstance(rec, r.OrderBookUpdate | r.Trade)
                assert rec.flagged == open_gap, (ticker, rec)
        assert not open_gap, f"{ticker}: gap still open"


def assert_unique_outputs(records: list[r.AnyRecord]) -> None:
    """No exchange frame (connection, sid, seq) produced two records: nothing was applied twice."""
    keys = Counter((x.connection_id, x.sid, x.seq) for x in records if isinstance(x, r.OrderBookUpdate | r.Trade))
    assert [k for k, n in keys.items() if n > 1] == []


def gaps(records: list[r.AnyRecord]) -> tuple[list[r.Gap], list[r.Gap]]:
    """(opened, closed) gap records."""
    gs = [x for x in records if isinstance(x, r.Gap)]
    return [g for g in gs if g.end_ns is None], [g for g in gs if g.end_ns is not None]


def last_before(records: list[r.AnyRecord], ticker: str, connection_id: int | None) -> int:
    """Receive time of the ticker's last record on ``connection_id``."""
    return max(x.received_ns for x in records if isinstance(x, r.OrderBookUpdate | r.Trade)
               and x.ticker == ticker and x.connection_id == connection_id)  # fmt: skip


def first_snapshot_after(records: list[r.AnyRecord], ticker: str, ns: int) -> r.OrderBookUpdate:
    return next(x for x in records if isinstance(x, r.OrderBookUpdate) and x.ticker == ticker
                and x.kind == "snapshot" and x.received_ns > ns)  # fmt: skip


# -- the faults ----------------------------------------------------------------------------------------


async def test_duplicated_frame_is_no_gap_and_applied_once(nats_server: NatsServer, tmp_path: Path) -> None:
    async with pipeline(nats_server, tmp_path) as run:
        await run.settle(60)
        run.sim.faults.duplicate_next(type="orderbook_delta")
        await run.settle(100)
        records = await run.normalized()
        raw = await run.raw()
        assert run.capture.core.sequencer.duplicates == 1
        assert run.counters.duplicates == 1

    assert gaps(records) == ([], [])
    texts = Counter(f.data for f in raw if isinstance(f, r.RawFrame))
    assert [t for t, n in texts.items() if n > 1 and b"orderbook_delta" in t] != []  # kept raw, twice
    assert_unique_outputs(records)
    assert_flagged_exactly_inside_gaps(records)
    assert_books_equal_truth(records, run.sim)


async def test_reordered_frames_gap_then_late_duplicate(nats_server: NatsServer, tmp_path: Path) -> None:
    async with pipeline(nats_server, tmp_path) as run:
        await run.settle(60)
        run.sim.faults.reorder_next(type="orderbook_delta")
        await run.settle(20)
        assert run.capture.core.sequencer.gaps == 1  # seq k+1 before k: a gap ...
        assert run.capture.core.sequencer.duplicates == 1  # ... then k arrives late: an anomaly, no gap
        records = await run.recovered()

    opened, closed = gaps(records)
    (sid,) = {g.sid for g in opened}
    assert {g.kind for g in opened} == {"exchange_seq"}
    assert {(g.received_seq or 0) - (g.expected_seq or 0) for g in opened} == {1}
    orderbook_tickers = {x.ticker for x in records if isinstance(x, r.OrderBookUpdate) and x.sid == sid}
    assert {g.ticker for g in opened} == orderbook_tickers  # every book on the sid, none spared
    assert {g.ticker for g in closed} == orderbook_tickers
    assert_unique_outputs(records)
    assert_flagged_exactly_inside_gaps(records)
    assert_books_equal_truth(records, run.sim)


async def test_abrupt_close_and_refusal_is_a_disconnect_gap(nats_server: NatsServer, tmp_path: Path) -> None:
    async with pipeline(nats_server, tmp_path) as run:
        await run.settle(60)
        old = run.capture.connector.shards[0].ws.connection_id
        run.sim.faults.refuse_connections(1.0)
        assert run.sim.faults.close_all(abrupt=True) == 1
        await wait_for(lambda: run.capture.connector.shards[0].ws.connects == 2, 15, "the reconnect")
        status = run.capture.connector.status().shards[0]
        await wait_for(lambda: run.sent_of_type("orderbook_snapshot") >= 12, 10, "fresh snapshots")
        await run.settle(60)
        records = await run.normalized()
        raw = await run.raw()

    ws = run.capture.connector.shards[0].ws
    assert ws.failures >= 1 and ws.last_rejection is not None and ws.last_rejection.status == 503  # refused first
    assert status.connected and status.reconnects == 1
    disconnects = [f for f in raw if isinstance(f, r.RawFrame) and f.channel == "ssmd.disconnect"]
    assert {f.connection_id for f in disconnects} == {old}
    opened, closed = gaps(records)
    tickers = {x.ticker for x in records if isinstance(x, r.OrderBookUpdate)}
    assert {g.kind for g in opened + closed} == {"disconnect"}
    assert sorted(g.ticker for g in opened) == sorted(g.ticker for g in closed) == sorted(tickers)
    for g in closed:
        # From the ticker's last frame on the old connection to its first snapshot on the new one.
        assert g.start_ns == last_before(records, g.ticker, old)
        snap = first_snapshot_after(records, g.ticker, g.start_ns)
        assert snap.connection_id != old and g.end_ns == snap.received_ns
    assert_unique_outputs(records)
    assert_flagged_exactly_inside_gaps(records)
    assert_books_equal_truth(records, run.sim)


async def test_error_25_resubscribes_with_fresh_snapshots(nats_server: NatsServer, tmp_path: Path) -> None:
    async with pipeline(nats_server, tmp_path) as run:
        await run.settle(60)
        shard = run.capture.connector.shards[0]
        ob_sid = shard.subs.channels["orderbook_delta"].sid
        assert run.sim.faults.send_error(ErrorCode.BUFFER_OVERFLOW, sid=ob_sid) == 1
        await wait_for(lambda: shard.subs.channels["orderbook_delta"].sid not in (None, ob_sid), 10, "new sid")
        new_sid = shard.subs.channels["orderbook_delta"].sid
        records = await run.recovered()

    assert shard.ws.connects == 1  # the connection survived; only the sid was replaced
    opened, closed = gaps(records)
    tickers = {x.ticker for x in records if isinstance(x, r.OrderBookUpdate)}
    assert {g.ticker for g in opened} == {g.ticker for g in closed} == tickers
    assert {(g.kind, g.sid) for g in opened} == {("seq_reset", ob_sid)}
    for g in closed:
        assert first_snapshot_after(records, g.ticker, g.start_ns).sid == new_sid
    assert_unique_outputs(records)
    assert_flagged_exactly_inside_gaps(records)
    assert_books_equal_truth(records, run.sim)


async def test_empty_snapshot_is_a_valid_book(nats_server: NatsServer, tmp_path: Path) -> None:
    async with Simulator(test_config(markets=4, seed=5), key_path=tmp_path / "key.pem") as sim:
        sim.faults.empty_next_snapshots(1)  # the first market subscribed gets an empty book
        s = settings_for(sim, nats_server.url, tmp_path)
        async with running(s) as ctx:
            run = Run(sim, ctx, s, nats_server.url)
            await wait_for(lambda: run.sent_of_type("orderbook_snapshot") >= 4, 20, "first snapshots")
            await run.settle()
            first = await run.normalized()
            empty = next(x for x in first if isinstance(x, r.OrderBookUpdate) and not x.bids and not x.asks)
            # Valid: a new order on the empty book is applied unflagged.
            await run.settle(200)
            records = await run.normalized()
            if gaps(records)[0]:
                records = await run.recovered()

    assert empty.kind == "snapshot" and not empty.flagged
    after = [x for x in records if isinstance(x, r.OrderBookUpdate | r.Trade | r.Gap) and x.ticker == empty.ticker]
    first_gap = next((i for i, x in enumerate(after) if isinstance(x, r.Gap)), len(after))
    assert any(isinstance(x, r.OrderBookUpdate) and x.kind == "change" for x in after[:first_gap])
    assert not any(x.flagged for x in after[:first_gap] if not isinstance(x, r.Gap))
    # The exchange's book was not really empty: the first delta taking a level below zero shows it, and
    # the gap it opens is recovered by a real snapshot.
    opened, closed = gaps(records)
    assert [g.ticker for g in opened] == [empty.ticker] == [g.ticker for g in closed]
    assert_flagged_exactly_inside_gaps(records)
    assert_books_equal_truth(records, sim)


async def test_subpenny_grids_and_fractional_sizes_exact(nats_server: NatsServer, tmp_path: Path) -> None:
    async with pipeline(nats_server, tmp_path, markets=4, seed=8, faults=FaultConfig(subpenny=1.0)) as run:
        await run.settle(300)
        records = await run.normalized()
        sent = run.sim.ground_truth.frames(next(iter(run.sim.ground_truth.sent)))

    prices = {lv.price for x in records if isinstance(x, r.OrderBookUpdate) for lv in (*x.bids, *x.asks)}
    sizes = {lv.size for x in records if isinstance(x, r.OrderBookUpdate) for lv in (*x.bids, *x.asks)}
    assert any(p * 100 % 1 for p in prices), "no sub-penny price seen"
    assert any(s % 1 for s in sizes), "no fractional size seen"
    assert gaps(records) == ([], [])
    assert_books_equal_truth(records, run.sim)
    trades = [json.loads(t)["msg"] for t in sent if t.startswith('{"type":"trade"')]
    got = {x.trade_id: (x.yes_price, x.count) for x in records if isinstance(x, r.Trade)}
    assert got == {t["trade_id"]: (Decimal(t["yes_price_dollars"]), Decimal(t["count_fp"])) for t in trades}
    assert any(c % 1 for _, c in got.values())


async def test_stale_connection_reconnects_with_a_disconnect_gap(nats_server: NatsServer, tmp_path: Path) -> None:
    async with pipeline(nats_server, tmp_path, sim_options={"heartbeat_s": 0.2}, stale_after=1.0) as run:
        await run.settle(40)
        shard = run.capture.connector.shards[0]
        await asyncio.sleep(1.5)  # idle (no frames), but pinged: not stale
        assert shard.ws.connects == 1
        old = shard.ws.connection_id
        run.sim.faults.stop_pings()
        await wait_for(lambda: shard.ws.stale_reconnects == 1 and shard.ws.connects == 2, 10, "a stale reconnect")
        run.sim.faults.resume_pings()
        await wait_for(lambda: run.sent_of_type("orderbook_snapshot") >= 12, 10, "fresh snapshots")
        await run.settle(40)
        records = await run.normalized()

    opened, closed = gaps(records)
    assert {g.kind for g in opened + closed} == {"disconnect"}
    assert {g.connection_id for g in opened} == {old}
    assert {g.ticker for g in opened} == {g.ticker for g in closed} == set(by_ticker(records))
    assert_flagged_exactly_inside_gaps(records)
    assert_books_equal_truth(records, run.sim)
