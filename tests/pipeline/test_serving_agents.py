"""Snapshotter and activity agents in the running pipeline: Redis tops of book match the exchange."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import redis.asyncio as aioredis
from pipeline_helpers import read_settled, running, settings_for, truth_book, wait_for

from ssmd import records as r
from ssmd.app import topic_name
from ssmd.devstack import NatsServer, ValkeyServer
from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import test_config


def _num(x: object) -> str:
    from decimal import Decimal

    assert isinstance(x, Decimal)
    return format(x.normalize(), "f") if x else "0"


async def test_redis_snapshot_and_activity(
    nats_server: NatsServer, valkey_server: ValkeyServer, tmp_path: Path
) -> None:
    agents = ("connector", "normalizer", "snapshotter", "activity")
    async with Simulator(test_config(markets=5, seed=2), key_path=tmp_path / "key.pem") as sim:
        settings = settings_for(sim, nats_server.url, tmp_path, redis_url=valkey_server.url)
        async with running(settings, agents) as ctx:
            await wait_for(lambda: sum(len(v) for v in sim.ground_truth.sent.values()) >= 6, 20, "snapshots")
            for _ in range(10):
                await sim.step(20)
            counters = ctx.services["normalizer"].counters
            sent = sum(len(v) for v in sim.ground_truth.sent.values())
            await wait_for(lambda: counters.frames - counters.markers >= sent, 30, "all frames normalized")
            normalized = await read_settled(nats_server.url, topic_name(settings.env, "normalized"))
            client = aioredis.from_url(valkey_server.url, decode_responses=True)
            tickers = {x.ticker for x in normalized if isinstance(x, r.OrderBookUpdate)}

            async def tops_match() -> bool:
                for ticker in tickers:
                    bids, asks = truth_book(sim, ticker)
                    top = await client.hgetall(f"kalshi-dev:kalshi:top:{ticker}")
                    want_bid = _num(max(bids)) if bids else ""
                    want_ask = _num(min(asks)) if asks else ""
                    if (top.get("bid"), top.get("ask")) != (want_bid, want_ask):
                        return False
                return True

            for _ in range(100):
                if await tops_match():
                    break
                await asyncio.sleep(0.1)
            assert await tops_match()
            index = await client.zrange("kalshi-dev:kalshi:index:markets", 0, -1)
            assert set(index) >= tickers
            await client.aclose()

            per_ticker = Counter(getattr(x, "ticker", "") for x in normalized)
            activity = ctx.services["activity"]
            await wait_for(lambda: all(activity[t].now() == per_ticker[t] for t in tickers), 20, "activity counts")
