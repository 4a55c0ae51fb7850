"""Helpers for pipeline tests: the ssmd app in process on a real nats-server, fed by the simulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import nats

from ssmd import codec
from ssmd import records as r
from ssmd.app import AppContext, create_app
from ssmd.kalshi import fixedpoint
from ssmd.settings import Settings
from ssmd.sim.simulator import Simulator
from ssmd.testing import wait_for
from ssmd.transport import naming


def settings_for(sim: Simulator, nats_url: str, tmp: Path, **kw: Any) -> Settings:
    assert sim.client_key is not None and sim.client_key.path is not None
    base: dict[str, Any] = {
        "nats_url": nats_url,
        "kalshi_ws_url": sim.ws_url,
        "kalshi_rest_url": sim.rest_url,
        "kalshi_key_id": sim.client_key.key_id,
        "kalshi_private_key": str(sim.client_key.path),
        "partitions": 2,
        "data_dir": str(tmp / "ssmd"),
        "stale_after": 30.0,
    }
    base.update(kw)
    return Settings(**base)


@contextlib.asynccontextmanager
async def running(
    settings: Settings, agents: tuple[str, ...] = ("connector", "normalizer")
) -> AsyncIterator[AppContext]:
    ctx = create_app(settings, agents, web_enabled=False, broker_commit_interval=0.2)
    await ctx.app.start()
    try:
        await wait_for(lambda: bool(ctx.app.consumer.assignment()) and ctx.app.tables.recovery.completed.is_set()
                       and not ctx.app.rebalancing, 30, "the first assignment")  # fmt: skip
        yield ctx
    finally:
        await ctx.app.stop()


async def steps(sim: Simulator, n: int) -> None:
    """Run ``n`` model steps (a multiple of 20), 20 at a time so the app's event loop keeps running."""
    for _ in range(n // 20):
        await sim.step(20)


async def read_batches(nats_url: str, topic: str) -> list[r.AnyRecord]:
    """Every record of a batch topic, partition by partition in stream order."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    out: list[r.AnyRecord] = []
    try:
        info = await js.stream_info(naming.stream_name(topic))
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(naming.stream_name(topic), seq)
            out.extend(codec.decode_batch(msg.data or b""))
    finally:
        await nc.close()
    return out


def updates_by_ticker(records: list[r.AnyRecord]) -> dict[str, list[r.OrderBookUpdate]]:
    """The order book updates among ``records``, per ticker, in order."""
    out: dict[str, list[r.OrderBookUpdate]] = {}
    for rec in records:
        if isinstance(rec, r.OrderBookUpdate):
            out.setdefault(rec.ticker, []).append(rec)
    return out


def yes_book(updates: list[r.OrderBookUpdate]) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
    """Apply normalized updates in order; return (bids, asks) as price -> size."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    for u in updates:
        if u.kind == "snapshot":
            bids, asks = {}, {}
        for side, levels in ((bids, u.bids), (asks, u.asks)):
            for level in levels:
                if level.size:
                    side[level.price] = level.size
                else:
                    side.pop(level.price, None)
    return bids, asks


def truth_book(sim: Simulator, ticker: str) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
    """The simulator's current book on the YES contract: bids = YES bids, asks = 1 - NO bids."""
    yes, no = sim.ground_truth.book_at(ticker)
    e4, e2 = fixedpoint.units_to_price, fixedpoint.units_to_count
    return ({e4(p): e2(s) for p, s in yes}, {e4(fixedpoint.ONE_DOLLAR - p): e2(s) for p, s in no})


async def read_settled(nats_url: str, topic: str, quiet: float = 0.3) -> list[r.AnyRecord]:
    """:func:`read_batches` once the topic has stopped growing for ``quiet`` seconds (outputs in flight land)."""
    records = await read_batches(nats_url, topic)
    while True:
        await asyncio.sleep(quiet)
        again = await read_batches(nats_url, topic)
        if len(again) == len(records):
            return again
        records = again
