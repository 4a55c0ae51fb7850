"""The Redis snapshot: latest state per market, readable with ``redis-cli``, written in pipelines.

Keys (all from :mod:`ssmd.names`, ``{env}:kalshi:{what}:{ticker}``):

===========================  ====  ==========================================================
``...:price:{ticker}``       hash  last trade: ``price``, ``size``, ``side``, ``ts`` (exchange ns),
                                   ``trade_id``
``...:top:{ticker}``         hash  top of book: ``bid``, ``bid_size``, ``ask``, ``ask_size``, ``ts``,
                                   ``flagged`` ("1" while the book is untrusted); empty side = ""
``...:book:{ticker}``        str   the whole book as JSON ``{"bids": [[p, s], ...], "asks": [...],
                                   "ts": ..., "flagged": bool}`` (prices and sizes as strings)
``...:status:{ticker}``      hash  ``status``, ``event_type``, ``result``, ``ts``
``...:index:markets``        zset  every ticker seen, scored by its last update time (ns)
===========================  ====  ==========================================================

:class:`Snapshotter` applies a batch of records with one pipeline round trip. Books are kept in
memory and seeded from the ``book`` key the first time a ticker is seen (so a restarted snapshotter
continues from Redis); a change record carries absolute sizes, so re-applying a redelivered batch is
harmless. Prices and sizes are written as exact decimal strings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from ssmd import names
from ssmd import records as r

FEED = "kalshi"


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


class Snapshotter:
    """Writes records' latest state to Redis (``client``: a ``redis.asyncio.Redis``)."""

    def __init__(self, client: Any, env: str) -> None:
        self.client = client
        self.env = names.validate_env(env)
        self.index_key = names.redis_key(env, FEED, "index", "markets")
        self._books: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}
        self.writes = 0

    def key(self, what: str, ticker: str) -> str:
        return names.redis_key(self.env, FEED, what, ticker)

    async def apply(self, batch: Iterable[r.AnyRecord]) -> int:
        """Write the latest state the records imply; return the number of Redis commands sent."""
        trades: dict[str, r.Trade] = {}
        statuses: dict[str, r.MarketStatus] = {}
        books: dict[str, r.OrderBookUpdate] = {}
        touched: dict[str, int] = {}
        for rec in batch:
            if isinstance(rec, r.Trade):
                trades[rec.ticker] = rec
            elif isinstance(rec, r.OrderBookUpdate):
                await self._apply_book(rec)
                books[rec.ticker] = rec
            elif isinstance(rec, r.MarketStatus):
                statuses[rec.ticker] = rec
            else:
                continue
            touched[rec.ticker] = max(touched.get(rec.ticker, 0), rec.received_ns)
        if not touched:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for ticker, t in trades.items():
            pipe.hset(self.key("price", ticker), mapping={
                "price": _num(t.yes_price), "size": _num(t.count), "side": t.taker_side,
                "ts": t.exchange_ns or t.received_ns, "trade_id": t.trade_id,
            })  # fmt: skip
        for ticker, b in books.items():
            self._write_book(pipe, ticker, b)
        for ticker, s in statuses.items():
            pipe.hset(self.key("status", ticker), mapping={
                "status": s.status, "event_type": s.event_type, "result": s.result,
                "ts": s.exchange_ns or s.received_ns,
            })  # fmt: skip
        pipe.zadd(self.index_key, {t: float(ns) for t, ns in touched.items()})
        commands = len(pipe)
        await pipe.execute()
        self.writes += commands
        return commands

    async def _apply_book(self, rec: r.OrderBookUpdate) -> None:
        if rec.ticker not in self._books and rec.kind == "change":
            await self._load_book(rec.ticker)
        if rec.kind == "snapshot":
            self._books[rec.ticker] = ({}, {})
        bids, asks = self._books.setdefault(rec.ticker, ({}, {}))
        for side, levels in ((bids, rec.bids), (asks, rec.asks)):
            for level in levels:
                if level.size:
                    side[level.price] = level.size
                else:
                    side.pop(level.price, None)

    async def _load_book(self, ticker: str) -> None:
        raw = await self.client.get(self.key("book", ticker))
        if raw is None:
            return
        saved = json.loads(raw)
        self._books[ticker] = (
            {Decimal(p): Decimal(s) for p, s in saved["bids"]},
            {Decimal(p): Decimal(s) for p, s in saved["asks"]},
        )

    def _write_book(self, pipe: Any, ticker: str, rec: r.OrderBookUpdate) -> None:
        bids, asks = self._books[ticker]
        best_bid = max(bids) if bids else None
        best_ask = min(asks) if asks else None
        ts = rec.exchange_ns or rec.received_ns
        pipe.hset(self.key("top", ticker), mapping={
            "bid": _num(best_bid) if best_bid is not None else "",
            "bid_size": _num(bids[best_bid]) if best_bid is not None else "",
            "ask": _num(best_ask) if best_ask is not None else "",
            "ask_size": _num(asks[best_ask]) if best_ask is not None else "",
            "ts": ts, "flagged": int(rec.flagged),
        })  # fmt: skip
        book = {
            "bids": [[_num(p), _num(bids[p])] for p in sorted(bids, reverse=True)],
            "asks": [[_num(p), _num(asks[p])] for p in sorted(asks)],
            "ts": ts,
            "flagged": rec.flagged,
        }
        pipe.set(self.key("book", ticker), json.dumps(book, separators=(",", ":")))
