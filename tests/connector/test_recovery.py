"""Recovery: per-ticker resync, reconnects (abrupt close, stale, refused), bad keys, terminal errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

from connector_helpers import Recorder, connector, server_tickers

from ssmd.kalshi.auth import generate_private_key, private_key_pem
from ssmd.kalshi.protocol import ErrorCode
from ssmd.sim import Simulator


async def test_resync_of_one_ticker_yields_a_fresh_snapshot_of_it_only(sim: Simulator, key_path: Path) -> None:
    rec = Recorder()
    async with connector(sim, key_path, rec, connections=2) as c:
        async with asyncio.timeout(5):
            await c.wait_ready()
        await sim.step(200)
        target = sorted(c.wanted())[7]
        mark = len(rec.frames)
        assert await c.resync([target, "NOT-CAPTURED"]) == {target}
        await rec.until(lambda: bool(rec.of_type("orderbook_snapshot", mark)))
        await sim.step(50)
        await asyncio.sleep(0.1)
        fresh = rec.of_type("orderbook_snapshot", mark)
        assert [f["msg"]["market_ticker"] for f in fresh] == [target]
        assert isinstance(fresh[0]["id"], int)  # the get_snapshot command's id
        assert not rec.of_type("subscribed", mark) and not rec.of_type("error", mark)
        assert all(s.reconnects == 0 for s in c.status().shards)


async def test_abrupt_close_reconnects_resubscribes_and_reports_the_outage(sim: Simulator, key_path: Path) -> None:
    rec = Recorder()
    async with connector(sim, key_path, rec, connections=2) as c:
        async with asyncio.timeout(5):
            await c.wait_ready()
        first_ids = {e.connection_id for e in rec.events if e.kind == "open"}
        mark = len(rec.frames)
        sim.faults.refuse_connections(0.6)  # the next attempts fail (HTTP 503) and back off
        assert sim.faults.close_all(abrupt=True) == 2
        await rec.until(lambda: sum(e.kind == "close" for e in rec.events) == 2, 3)
        assert all("dropped (no close frame: 1006)" in e.reason for e in rec.events if e.kind == "close")
        await asyncio.sleep(0.3)
        status = c.status()
        assert not any(s.connected for s in status.shards)
        assert all("HTTP 503" in s.last_error for s in status.shards)
        assert all(s.ws.backoff.attempt >= 2 for s in c.shards)  # retried, backing off

        async with asyncio.timeout(5):
            await c.wait_ready()
        second_ids = {e.connection_id for e in rec.events if e.kind == "open"} - first_ids
        assert len(second_ids) == 2 and not second_ids & first_ids
        assert {f["msg"]["market_ticker"] for f in rec.of_type("orderbook_snapshot", mark)} == c.wanted()
        assert server_tickers(sim) == c.wanted()
        assert all(s.reconnects == 1 for s in c.status().shards)
        closes = {e.connection_id: e.at_ns for e in rec.events if e.kind == "close"}
        assert set(closes) == first_ids


async def test_stale_connection_is_replaced(sim: Simulator, key_path: Path) -> None:
    sim.faults.stop_pings()
    rec = Recorder()
    async with connector(sim, key_path, rec, stale_after=0.4, ping_interval=0.1) as c:
        async with asyncio.timeout(5):
            await c.wait_ready()
        # No order flow, no server pings: only our own pings' pongs, which prove nothing about the feed.
        await rec.until(lambda: c.status().shards[0].stale_reconnects >= 1, 3)
        await rec.until(lambda: c.status().shards[0].connected, 3)
        assert "stale" in next(e.reason for e in rec.events if e.kind == "close")
        async with asyncio.timeout(5):
            await c.wait_ready()
        await sim.step(100)
        await rec.until(lambda: bool(rec.of_type("orderbook_delta")), 2)


async def test_server_pings_keep_a_quiet_connection_alive(key_path: Path) -> None:
    from ssmd.sim import SimConfig

    async with Simulator(SimConfig(markets=5, rate=0, heartbeat_s=0.1), key_path=key_path) as sim:
        rec = Recorder()
        async with connector(sim, key_path, rec, stale_after=0.5) as c:
            async with asyncio.timeout(5):
                await c.wait_ready()
            await asyncio.sleep(1.5)
            assert c.status().shards[0].stale_reconnects == 0 and c.status().shards[0].reconnects == 0


async def test_bad_key_is_reported_precisely_and_retried(sim: Simulator, key_path: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(private_key_pem(generate_private_key()))
    wrong.chmod(0o600)
    rec = Recorder()
    c = connector(sim, wrong, rec)
    async with c:
        await asyncio.sleep(0.8)
        shard = c.status().shards[0]
        assert not shard.connected and shard.connects == 0
        assert shard.last_error == (
            "WebSocket upgrade refused: HTTP 401 (authentication_error INCORRECT_API_KEY_SIGNATURE)")
        failures = c.shards[0].ws.failures
        assert 3 <= failures <= 12  # backoff 0.05 s doubling to a 0.4 s cap, with jitter
        assert c.shards[0].ws.last_rejection is not None and c.shards[0].ws.last_rejection.status == 401
    assert rec.frames == []


async def test_refused_upgrades_then_success(sim: Simulator, key_path: Path) -> None:
    sim.faults.reject_next_upgrades(401, count=2)
    sim.faults.reject_next_upgrades(400, count=1)
    rec = Recorder()
    async with connector(sim, key_path, rec) as c:
        async with asyncio.timeout(5):
            await c.wait_ready()
        assert c.shards[0].ws.failures == 3 and c.status().shards[0].connects == 1


async def test_unreachable_exchange_is_retried_not_fatal(sim: Simulator, key_path: Path) -> None:
    rec = Recorder()
    c = connector(sim, key_path, rec)
    port = sim.server.port
    await sim.stop()
    async with c:
        await asyncio.sleep(0.4)
        status = c.status()
        assert c.shards[0].ws.failures >= 2
        assert f"connect to ws://127.0.0.1:{port}/trade-api/ws/v2 failed: ConnectionRefusedError" in \
            status.shards[0].last_error
        assert not status.discovered
        assert status.discovery_error.startswith("GET /markets: ClientConnectorError: Cannot connect to host")


async def test_terminal_error_resubscribes_the_sid(sim: Simulator, key_path: Path) -> None:
    rec = Recorder()
    async with connector(sim, key_path, rec) as c:
        async with asyncio.timeout(5):
            await c.wait_ready()
        ob_sid = next(ch.sid for ch in c.status().shards[0].channels if ch.channel == "orderbook_delta")
        mark = len(rec.frames)
        assert sim.faults.send_error(ErrorCode.BUFFER_OVERFLOW, sid=ob_sid) == 1
        await rec.until(lambda: len(rec.of_type("orderbook_snapshot", mark)) == len(c.wanted()))
        async with asyncio.timeout(5):
            await c.wait_ready()
        new_sid = next(ch.sid for ch in c.status().shards[0].channels if ch.channel == "orderbook_delta")
        assert new_sid not in (None, ob_sid)
        assert rec.of_type("error", mark)[0]["msg"]["code"] == 25
        assert "exchange error 25 (Subscription buffer overflow) ended sid" in c.status().shards[0].last_error
        assert server_tickers(sim) == c.wanted() and c.status().shards[0].reconnects == 0
