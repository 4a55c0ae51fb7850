"""Checklist 20: every fault is switchable and observable by a client."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from itertools import pairwise
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ssmd.errors import ConfigError
from ssmd.kalshi.protocol import ErrorCode
from ssmd.sim.config import FaultConfig
from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import SimClient
from ssmd.sim.testing import test_config as make_config


def some(sim: Simulator, n: int) -> list[str]:
    return list(sim.model.markets)[:n]


async def book_seqs(sim: Simulator, c: SimClient, steps: int = 300) -> list[int]:
    await sim.step(steps)
    return [f["seq"] for f in await c.drain() if f.get("sid") == 1 and "seq" in f]


async def test_drop_burns_a_seq_and_ground_truth_records_it(sim: Simulator, client: SimClient) -> None:
    await client.subscribe(["orderbook_delta"], market_tickers=some(sim, 12))
    sim.faults.drop_next(sid=1)
    seqs = [12, *await book_seqs(sim, client)]  # the 12 snapshots took seq 1..12
    gaps = [(a, b) for a, b in pairwise(seqs) if b != a + 1]
    assert gaps == [(12, 14)]
    dropped = sim.ground_truth.dropped[1]
    assert len(dropped) == 1 and '"seq":13,' in dropped[0].text


async def test_duplicate_and_reorder(sim: Simulator, client: SimClient) -> None:
    await client.subscribe(["orderbook_delta"], market_tickers=some(sim, 12))
    sim.faults.duplicate_next(sid=1)
    seqs = await book_seqs(sim, client)
    assert seqs[:3] == [13, 13, 14]
    sim.faults.reorder_next(sid=1)
    seqs = await book_seqs(sim, client)
    assert seqs[:3] == [seqs[1] + 1, seqs[1], seqs[1] + 2]


async def test_delay_holds_frames(sim: Simulator, client: SimClient) -> None:
    await client.subscribe(["orderbook_delta"], market_tickers=some(sim, 12))
    sim.faults.set_delay(0.4)
    started = time.monotonic()
    await sim.step(50)
    await client.recv(within=2)
    assert time.monotonic() - started >= 0.35
    sim.faults.set_delay(0)
    assert await client.drain()


async def test_stop_and_resume_pings(client_for: Any) -> None:
    async with Simulator(make_config(heartbeat_s=0.05)) as sim:
        c = await client_for(sim, ping_interval=None)
        pings: list[float] = []
        original = c.ws.protocol.recv_frame

        def spy(frame):  # type: ignore[no-untyped-def]
            if frame.opcode.name == "PING":
                pings.append(time.monotonic())
            return original(frame)

        c.ws.protocol.recv_frame = spy  # type: ignore[method-assign]
        await asyncio.sleep(0.3)
        assert pings
        sim.faults.stop_pings()
        await asyncio.sleep(0.3)  # a ping already on its way may still arrive
        stopped = time.monotonic()
        await asyncio.sleep(0.3)
        assert not [t for t in pings if t > stopped]
        sim.faults.resume_pings()
        await asyncio.sleep(0.3)
        assert [t for t in pings if t > stopped]


async def test_busy_connections_skip_pings_when_configured(client_for: Any) -> None:
    faults = FaultConfig(busy_skips_pings=True)
    async with Simulator(make_config(heartbeat_s=0.2, rate=3000, faults=faults)) as sim:
        c = await client_for(sim, ping_interval=None)
        pings: list[float] = []
        original = c.ws.protocol.recv_frame

        def spy(frame):  # type: ignore[no-untyped-def]
            if frame.opcode.name == "PING":
                pings.append(time.monotonic())
            return original(frame)

        c.ws.protocol.recv_frame = spy  # type: ignore[method-assign]

        async def read_all() -> None:
            while True:
                await c.ws.recv()

        reader = asyncio.create_task(read_all())
        await c.send("subscribe", {"channels": ["ticker"]})
        await asyncio.sleep(0.3)
        busy_from = time.monotonic()
        await asyncio.sleep(0.8)
        assert not [t for t in pings if t > busy_from]
        sim.rate = 0
        await asyncio.sleep(0.8)
        assert [t for t in pings if t > busy_from]
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


@pytest.mark.parametrize(("abrupt", "code"), [(True, 1006), (False, 1001)])
async def test_close_all_abrupt_or_with_close_frame(
    sim: Simulator, client: SimClient, abrupt: bool, code: int
) -> None:
    await client.subscribe(["ticker"])
    assert sim.faults.close_all(abrupt=abrupt) == 1
    with pytest.raises(ConnectionClosed) as info:
        await client.recv(within=2)
    received = info.value.rcvd
    assert (received.code if received else 1006) == code


async def test_refuse_and_reject_upgrades(sim: Simulator) -> None:
    sim.faults.reject_next_upgrades(401)
    sim.faults.reject_next_upgrades(400)
    sim.faults.refuse_connections(0.3)
    for expected in (503, 503):
        with pytest.raises(InvalidStatus) as info:
            await SimClient.connect(sim)
        assert info.value.response.status_code == expected
    await asyncio.sleep(0.35)
    for expected in (401, 400):
        with pytest.raises(InvalidStatus) as info:
            await SimClient.connect(sim)
        assert info.value.response.status_code == expected
    c = await SimClient.connect(sim)
    await c.close()


async def test_periodic_abrupt_close_then_refusal() -> None:
    faults = FaultConfig.parse(["close_abrupt=0.2", "refuse=5"])
    async with Simulator(make_config(faults=faults)) as sim:
        c = await SimClient.connect(sim)
        with pytest.raises(ConnectionClosed):
            await c.recv(within=2)
        with pytest.raises(InvalidStatus) as info:
            await SimClient.connect(sim)
        assert info.value.response.status_code == 503


async def test_error_25_stops_the_sid(sim: Simulator, client: SimClient) -> None:
    await client.subscribe(["orderbook_delta"], market_tickers=some(sim, 12))
    await client.subscribe(["trade"])
    sim.faults.overflow_next(sid=1)
    await sim.step(300)
    frames = await client.drain()
    errors = [f for f in frames if f["type"] == "error"]
    overflow = {"code": 25, "msg": "Subscription buffer overflow"}
    assert errors == [{"type": "error", "sid": 1, "seq": 13, "msg": overflow}]
    after = frames[frames.index(errors[0]) + 1:]
    assert all(f["sid"] == 2 for f in after) and after
    await client.send("list_subscriptions")
    assert (await client.recv())["msg"] == [{"channel": "trade", "sid": 2}]
    assert sim.faults.send_error(ErrorCode.TOO_MANY_REQUESTS) == 1
    err = await client.recv()
    assert err["sid"] == 2 and err["msg"] == {"code": 27, "msg": "Too many requests"} and "seq" in err
    assert sim.faults.send_error(ErrorCode.CHANNEL_ERROR, sid=2) == 1
    assert (await client.recv())["msg"]["code"] == 10
    await client.send("list_subscriptions")
    assert (await client.recv())["msg"] == []


async def test_standing_error25_and_drop_probabilities() -> None:
    faults = FaultConfig.parse(["drop_seq=0.05", "error25=0.002"])
    async with Simulator(make_config(faults=faults)) as sim:
        c = await SimClient.connect(sim)
        await c.subscribe(["orderbook_delta"], market_tickers=some(sim, 12))
        await sim.step(2000)
        frames = await c.drain()
        await c.close()
    seqs = [f["seq"] for f in frames if f.get("sid") == 1]
    assert any(b > a + 1 for a, b in pairwise(seqs))
    assert sim.ground_truth.dropped[1]


async def test_empty_snapshot(sim: Simulator, client: SimClient) -> None:
    sim.faults.empty_next_snapshots(1)
    frames = await client.subscribe(["orderbook_delta"], market_tickers=some(sim, 2))
    assert frames[1]["msg"] == {"market_ticker": some(sim, 1)[0], "market_id": ""}
    assert "yes_dollars_fp" in frames[2]["msg"]


async def test_subpenny_grids_and_fractional_sizes() -> None:
    async with Simulator(make_config(faults=FaultConfig(subpenny=1.0))) as sim:
        c = await SimClient.connect(sim)
        frames = await c.subscribe(["orderbook_delta"], market_tickers=some(sim, 12))
        await sim.step(300)
        frames += await c.drain()
        await c.close()
    structures = {m.structure for m in sim.model.markets.values()}
    assert structures <= {"deci_cent", "tapered_deci_cent"}
    deltas = [f["msg"] for f in frames if f["type"] == "orderbook_delta"]
    assert any(d["price_dollars"][4] != "0" for d in deltas)  # a tenth of a cent
    assert any(not d["delta_fp"].endswith(".00") for d in deltas)  # fractional contracts


async def test_slow_client_gets_error_25_with_overflow_bytes() -> None:
    faults = FaultConfig(overflow_bytes=50_000)
    async with Simulator(make_config(faults=faults, markets=50, rate=40_000)) as sim:
        c = await SimClient.connect(sim, max_queue=1)
        await c.send("subscribe", {"channels": ["orderbook_delta"], "market_tickers": list(sim.model.markets)})
        # The client reads nothing: once socket buffers are full, the backlog grows past the limit.
        session = sim.server.sessions()[0]
        while not session.subs:  # noqa: ASYNC110 - polling the server's state is the observation
            await asyncio.sleep(0.01)
        deadline = time.monotonic() + 10
        while session.subs and time.monotonic() < deadline:  # noqa: ASYNC110 - as above
            await asyncio.sleep(0.05)
        assert not session.subs, "the sid was not stopped"
        written = sim.ground_truth.frames(session.conn_id)
        assert '{"type":"error","sid":1,' in written[-1] and '"code":25' in written[-1]
        c.ws.transport.abort()


def test_fault_specs_parse_and_refuse_bad_ones() -> None:
    config = FaultConfig.parse(["drop_seq=0.01", "stop_pings", "delay=1.5", "overflow_bytes=1000"])
    assert (config.drop_seq, config.stop_pings, config.delay, config.overflow_bytes) == (0.01, True, 1.5, 1000)
    for bad, message in (("nope=1", "unknown fault 'nope'"), ("drop_seq=2", "within [0, 1]"),
                         ("delay=x", "expected a number"), ("stop_pings=maybe", "expected a flag"),
                         ("delay=-1", "must not be negative")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            FaultConfig.parse([bad])
