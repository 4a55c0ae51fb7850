"""The Redis snapshot on a real valkey-server: latest trade, top of book, whole book, status, index."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from ssmd import records as r
from ssmd.devstack import ValkeyServer
from ssmd.snapshot import Snapshotter

D = Decimal
T = "KXGOLDH-26AUG2711-T4615.99"


@pytest.fixture
async def client(valkey_server: ValkeyServer) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.from_url(valkey_server.url, decode_responses=True)
    yield c
    await c.aclose()


def book(
    kind: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]], ns: int, flagged: bool = False
) -> r.OrderBookUpdate:
    return r.OrderBookUpdate(
        T, kind,  # type: ignore[arg-type]
        tuple(r.Level(D(p), D(s)) for p, s in bids), tuple(r.Level(D(p), D(s)) for p, s in asks),
        ns, ns + 1, flagged=flagged,
    )  # fmt: skip


async def test_latest_state_is_in_redis(client: aioredis.Redis) -> None:
    snap = Snapshotter(client, "kalshi-dev")
    batch: list[r.AnyRecord] = [
        book("snapshot", [("0.41", "5.5"), ("0.40", "10")], [("0.45", "3")], 100),
        r.Trade(T, D("0.36"), D("136.00"), "sell", "t1", 200, 201),
        book("change", [("0.42", "1.25")], [("0.45", "0")], 300),
        r.Trade(T, D("0.42"), D("2"), "buy", "t2", 400, 401),
        r.MarketStatus(T, "determined", 500, 501, event_type="determined", result="yes"),
    ]
    await snap.apply(batch)
    assert await client.hgetall(f"kalshi-dev:kalshi:price:{T}") == {
        "price": "0.42", "size": "2", "side": "buy", "ts": "401", "trade_id": "t2",
    }  # fmt: skip
    assert await client.hgetall(f"kalshi-dev:kalshi:top:{T}") == {
        "bid": "0.42", "bid_size": "1.25", "ask": "", "ask_size": "", "ts": "301", "flagged": "0",
    }  # fmt: skip
    whole = json.loads(await client.get(f"kalshi-dev:kalshi:book:{T}"))
    assert whole["bids"] == [["0.42", "1.25"], ["0.41", "5.5"], ["0.4", "10"]] and whole["asks"] == []
    assert (await client.hgetall(f"kalshi-dev:kalshi:status:{T}"))["status"] == "determined"
    assert await client.zrange("kalshi-dev:kalshi:index:markets", 0, -1) == [T]


async def test_restart_continues_the_book_from_redis(client: aioredis.Redis) -> None:
    await Snapshotter(client, "kalshi-dev").apply([book("snapshot", [("0.40", "10")], [("0.60", "1")], 100)])
    fresh = Snapshotter(client, "kalshi-dev")  # a restarted snapshotter: empty memory
    await fresh.apply([book("change", [("0.40", "7")], [], 200)])
    top = await client.hgetall(f"kalshi-dev:kalshi:top:{T}")
    assert (top["bid"], top["bid_size"], top["ask"], top["ask_size"]) == ("0.4", "7", "0.6", "1")


async def test_redelivered_batch_is_harmless_and_flags_show(client: aioredis.Redis) -> None:
    snap = Snapshotter(client, "kalshi-dev")
    batch: list[r.AnyRecord] = [
        book("snapshot", [("0.40", "10")], [], 100),
        book("change", [("0.40", "3")], [], 200, True),
    ]
    await snap.apply(batch)
    await snap.apply(batch[1:])
    top = await client.hgetall(f"kalshi-dev:kalshi:top:{T}")
    assert (top["bid_size"], top["flagged"]) == ("3", "1")


async def test_envs_do_not_mix(client: aioredis.Redis) -> None:
    await Snapshotter(client, "kalshi-a").apply([r.Trade(T, D("0.5"), D("1"), "buy", "x", 1)])
    assert await client.keys("kalshi-b:*") == []
    assert await client.keys("kalshi-a:*") != []
