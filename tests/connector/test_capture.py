"""Capturing exactly the requested markets, byte for byte, and changing them at run time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from connector_helpers import Recorder, connector, server_tickers

from ssmd.sim import Simulator


async def test_signs_in_and_receives_exactly_the_requested_markets(sim: Simulator, key_path: Path) -> None:
    wanted = sorted(sim.model.markets)[3:8]
    rec = Recorder()
    async with connector(sim, key_path, rec, markets=tuple(wanted), connections=2) as c:
        async with asyncio.timeout(5):
            await c.wait_ready()
        assert c.wanted() == set(wanted)
        assert server_tickers(sim) == set(wanted) == server_tickers(sim, "trade")
        await sim.step(3000)
        await rec.until(lambda: sum(s.frames for s in c.status().shards) == sum(
            len(sim.ground_truth.frames(k)) for k in range(1, 10)))

        snapshots = rec.of_type("orderbook_snapshot")
        assert sorted(f["msg"]["market_ticker"] for f in snapshots) == wanted  # one each, no more
        flow = rec.of_type("orderbook_delta") + rec.of_type("trade")
        assert rec.of_type("trade") and len(rec.of_type("orderbook_delta")) > 50
        assert {f["msg"]["market_ticker"] for f in flow} <= set(wanted)

        # Every frame arrives exactly as the simulator wrote it, in order, per connection.
        by_conn: dict[int, list[bytes]] = {}
        for raw, _, cid in rec.frames:
            by_conn.setdefault(cid, []).append(raw)
        sent = [[t.encode() for t in sim.ground_truth.frames(k)] for k in (1, 2)]
        assert sorted(by_conn.values()) == sorted(sent)
        assert len(by_conn) == 2 and 0 not in by_conn
        times = [ns for _, ns, _ in rec.frames]
        assert all(abs(ns - times[0]) < 60e9 for ns in times)

        status = c.status()
        assert status.markets == 5 and status.wanted == 5 and status.callback_errors == 0
        assert all(s.connected and s.reconnects == 0 and s.last_frame_ns for s in status.shards)
        assert sum(ch.markets for s in status.shards for ch in s.channels if ch.channel == "orderbook_delta") == 5


async def test_owner_predicate_changes_capture_at_run_time(sim: Simulator, key_path: Path) -> None:
    every = set(sim.model.markets)
    half = {t for t in every if hash(t) % 2}
    rec = Recorder()
    async with connector(sim, key_path, rec, connections=3, chunk=4) as c:  # commands of <= 4 markets
        c.set_owner(lambda t: False)
        async with asyncio.timeout(5):
            await c.wait_ready()
        assert c.markets == every and c.wanted() == set() and server_tickers(sim) == set()

        c.set_owner(lambda t: t in half)
        async with asyncio.timeout(5):
            await c.wait_ready()
        assert server_tickers(sim) == half == server_tickers(sim, "trade")
        assert {f["msg"]["market_ticker"] for f in rec.of_type("orderbook_snapshot")} == half

        mark = len(rec.frames)
        c.set_owner(lambda t: t not in half)
        async with asyncio.timeout(5):
            await c.wait_ready()
        assert server_tickers(sim) == every - half
        assert {f["msg"]["market_ticker"] for f in rec.of_type("orderbook_snapshot", mark)} == every - half
        assert all(s.reconnects == 0 for s in c.status().shards)  # no reconnect needed to reshape


@pytest.mark.parametrize("sim", [{"max_markets_per_sid": 12}], indirect=True)
async def test_market_limit_is_reported_and_retried_and_more_connections_fit(sim: Simulator, key_path: Path) -> None:
    rec = Recorder()
    async with connector(sim, key_path, rec, connections=1) as c:
        await rec.until(lambda: len(rec.of_type("error")) >= 3, 3)  # refused, retried after a backoff
        assert {f["msg"]["code"] for f in rec.of_type("error")} == {26}
        assert c.status().shards[0].last_error == (
            "exchange error 26 (Subscription market limit exceeded) for subscribe on ['orderbook_delta', 'trade']")
        assert server_tickers(sim) == set()
    rec = Recorder()
    async with connector(sim, key_path, rec, connections=8) as c:
        async with asyncio.timeout(5):
            await c.wait_ready()
        assert server_tickers(sim) == set(sim.model.markets) and not rec.of_type("error")


async def test_paused_reading_holds_frames_back_without_loss_or_reconnect(sim: Simulator, key_path: Path) -> None:
    rec = Recorder()
    async with connector(sim, key_path, rec, stale_after=0.3) as c:
        async with asyncio.timeout(5):
            await c.wait_ready()
        c.pause_reading()
        mark = len(rec.frames)
        await sim.step(300)
        await asyncio.sleep(0.7)  # longer than stale_after: a paused socket is not judged stale
        assert len(rec.frames) == mark
        c.resume_reading()
        await rec.until(lambda: len(rec.frames) - mark == len(sim.ground_truth.frames(1)) - mark)
        assert [raw for raw, _, _ in rec.frames] == [t.encode() for t in sim.ground_truth.frames(1)]
        assert c.status().shards[0].reconnects == 0


async def test_stop_leaves_no_task_behind(sim: Simulator, key_path: Path) -> None:
    before = asyncio.all_tasks()
    rec = Recorder()
    async with connector(sim, key_path, rec, connections=3, markets=("series:NOPE",), ping_interval=0.2) as c:
        async with asyncio.timeout(5):
            await c.wait_ready()
        sim.faults.refuse_connections(5)
        sim.faults.close_all()
        await rec.until(lambda: sum(e.kind == "close" for e in rec.events) == 3)
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set()
