"""Shared pieces of the archive tests: a controllable clock, a store that dies mid-flush, inputs."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Self

from ssmd.archive.timefmt import day_start_ns
from ssmd.records import AnyRecord, Gap, Level, MarketStatus, OrderBookUpdate, RawFrame, Trade
from ssmd.store import ObjectInfo, ObjectStore

ENV = "kalshi-test"
DAY = dt.date(2025, 12, 14)
T0 = day_start_ns(DAY)
SEC = 10**9


class Clock:
    """Wall time the test controls (ns)."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class Crash(BaseException):
    """The process died (kill -9): nothing after this point runs. A BaseException so no handler eats it."""


class CrashingStore:
    """A real store whose ``put`` dies after ``puts`` successful puts (None: never)."""

    def __init__(self, store: ObjectStore, puts: int | None) -> None:
        self._store, self.url, self.left = store, store.url, puts

    async def put(self, key: str, data: bytes) -> None:
        if self.left is not None:
            if self.left == 0:
                raise Crash
            self.left -= 1
        await self._store.put(key, data)

    async def get(self, key: str) -> bytes:
        return await self._store.get(key)

    async def head(self, key: str) -> ObjectInfo | None:
        return await self._store.head(key)

    def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        return self._store.list(prefix)

    async def delete(self, key: str) -> None:
        await self._store.delete(key)

    async def delete_prefix(self, prefix: str) -> int:
        return await self._store.delete_prefix(prefix)

    async def close(self) -> None:
        return None  # the wrapped store belongs to the test

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


@dataclass(frozen=True)
class Event:
    partition: int
    offset: int
    at_ns: int
    items: tuple[Any, ...]

    @property
    def position(self) -> tuple[int, int]:
        return (self.partition, self.offset)


def raw_events(rng: random.Random, n: int, span_ns: int, partitions: int = 2) -> list[Event]:
    """``n`` events of raw frames over ``span_ns`` from T0, frames of several types, some not JSON."""
    channels = ["orderbook_delta", "orderbook_snapshot", "trade", "ticker", "market_lifecycle_v2", "ok", "error"]
    offsets = [0] * partitions
    frame_no: dict[int, int] = {}
    out = []
    for i in range(n):
        p = rng.randrange(partitions)
        at = T0 + span_ns * i // n
        frames = []
        for _ in range(rng.randint(1, 12)):
            conn = 100 + p
            frame_no[conn] = frame_no.get(conn, 0) + 1
            ch = rng.choice(channels)
            if rng.random() < 0.05:
                data = bytes([0xFF, rng.randrange(256)]) + b"\n{not json"
            else:
                data = b'{"type":"%s","sid":%d,"seq":%d,"msg":{"market_ticker":"T-%d","yes":[%d]}}' % (
                    ch.encode(), p + 1, frame_no[conn], rng.randrange(5), rng.randrange(100))
            frames.append(RawFrame(at, ch, data, conn, frame_no=frame_no[conn]))
        offsets[p] += 1
        out.append(Event(p, offsets[p], at, tuple(frames)))
    return out


TICKERS = ("KXBTC-25DEC31-B100000", "KXGOLDH-26AUG2711-T4615.99", "INXD-25-B4000", "KXRAIN-NYC")


def partition_of(ticker: str) -> int:
    return TICKERS.index(ticker) % 2


def record(rng: random.Random, ticker: str, at: int, n: int) -> AnyRecord:
    kind = rng.random()
    p = Decimal(rng.randrange(1, 100)) / 100
    if kind < 0.4:
        return OrderBookUpdate(ticker, "change", (Level(p, Decimal(rng.randrange(0, 500))),), (), at, at - 5, 1, n, 77)
    if kind < 0.75:
        return Trade(ticker, p, Decimal("1.50"), rng.choice(["buy", "sell"]), f"t{n}", at, at - 7, 2, n, 77)
    if kind < 0.9:
        return MarketStatus(ticker, "active", at, at - 3, event_type="activated")
    return Gap(ticker, "exchange_seq", at - 2 * SEC, at, at + SEC if rng.random() < 0.5 else None, 77, 1, n, n + 3,
               missing=2)


def normalized_events(rng: random.Random, n: int, span_ns: int) -> list[Event]:
    """``n`` events, each records of the tickers of one partition, over ``span_ns`` from T0."""
    offsets = [0, 0]
    out = []
    for i in range(n):
        p = rng.randrange(2)
        at = T0 + span_ns * i // n
        mine = [t for t in TICKERS if partition_of(t) == p]
        recs = tuple(record(rng, rng.choice(mine), at + j, i * 100 + j + 1) for j in range(rng.randint(1, 10)))
        offsets[p] += 1
        out.append(Event(p, offsets[p], at, recs))
    return out
