"""REST market data under ``/trade-api/v2``, served from the same model state as the WebSocket.

Unsigned GETs of market data are allowed (as on Kalshi); a request carrying auth headers must be validly
signed (path without query string) or gets 401 with Kalshi's body; other paths (``/portfolio/...``)
require a signature. Signed requests draw from a per-key token bucket (Basic tier: 200 read tokens/s,
10 per request) and get 429 ``{"error": "too many requests"}`` without Retry-After when it runs dry.
Cursors are opaque strings; an empty cursor means the last page.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from ssmd.kalshi.auth import KeyRing
from ssmd.kalshi.protocol import (
    EVENTS_LIMIT,
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    MARKET_STATUS_FILTERS,
    MARKETS_LIMIT,
    MVE_PREFIX,
    ORDERBOOK_MAX_DEPTH,
    ORDERBOOKS_MAX_TICKERS,
    REST_PREFIX,
    TRADES_LIMIT,
)
from ssmd.sim import objects
from ssmd.sim.model import MarketModel

_encode = msgspec.json.Encoder().encode
Query = dict[str, list[str]]
Result = tuple[int, Any]


def json_body(obj: object) -> bytes:
    return _encode(obj)


class BadRequest(Exception):
    pass


def _error(status: int, code: str, message: str) -> Result:
    return status, {"error": {"code": code, "message": message}}


def _one(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _int(query: Query, name: str, default: int, low: int, high: int) -> int:
    raw = _one(query, name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        msg = f"{name} must be an integer, got {raw!r}"
        raise BadRequest(msg) from None
    if not low <= value <= high:
        msg = f"{name} must be within {low}..{high}, got {value}"
        raise BadRequest(msg)
    return value


def _encode_cursor(kind: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode()


def _decode_cursor(query: Query, kind: str) -> int | None:
    raw = _one(query, "cursor")
    if not raw:
        return None
    try:
        prefix, _, position = base64.urlsafe_b64decode(raw.encode()).decode().partition(":")
        if prefix != kind:
            raise ValueError(prefix)
        return int(position)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        msg = f"invalid cursor {raw!r}"
        raise BadRequest(msg) from None


class TokenBucket:
    def __init__(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity = rate, capacity
        self.tokens, self.at = capacity, time.monotonic()

    def take(self, cost: float) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


class RestApi:
    READ_RATE, READ_CAPACITY, COST = 200.0, 200.0, 10.0

    def __init__(self, model: MarketModel, keyring: KeyRing, *, rate_limit: bool = True) -> None:
        self.model = model
        self.keyring = keyring
        self.rate_limit = rate_limit
        self._buckets: dict[str, TokenBucket] = {}
        self._routes: list[tuple[re.Pattern[str], Callable[..., Result]]] = [
            (re.compile(p), h) for p, h in (
                (r"/exchange/status", self.exchange_status),
                (r"/series", self.series_list),
                (r"/series/(?P<ticker>[^/]+)", self.series_one),
                (r"/events", self.events_list),
                (r"/events/(?P<ticker>[^/]+)", self.event_one),
                (r"/markets", self.markets_list),
                (r"/markets/trades", self.trades_list),
                (r"/markets/orderbooks", self.orderbooks),
                (r"/markets/(?P<ticker>[^/]+)", self.market_one),
                (r"/markets/(?P<ticker>[^/]+)/orderbook", self.orderbook),
            )
        ]

    def handle(self, target: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """Answer ``GET target`` (path with query string): (HTTP status, JSON body)."""
        status, obj = self._dispatch(target, headers)
        return status, json_body(obj)

    def _dispatch(self, target: str, headers: Mapping[str, str]) -> Result:
        url = urlsplit(target)
        path = url.path
        rel = path[len(REST_PREFIX):] or "/"
        signed = any(headers.get(h) for h in (HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE))
        route = next(((h, m) for p, h in self._routes if (m := p.fullmatch(rel))), None)
        if signed or route is None:
            failure = self.keyring.check(headers, "GET", path)
            if failure is not None and (signed or rel.startswith("/portfolio")):
                return 401, failure.body()
            if failure is None and self.rate_limit and not self._bucket(headers[HEADER_KEY]).take(self.COST):
                return 429, {"error": "too many requests"}
        if route is None:
            return _error(404, "not_found", f"no endpoint {path}")
        handler, match = route
        try:
            return handler(parse_qs(url.query), **match.groupdict())
        except BadRequest as e:
            return _error(400, "bad_request", str(e))

    def _bucket(self, key_id: str) -> TokenBucket:
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = TokenBucket(self.READ_RATE, self.READ_CAPACITY)
        return bucket

    # -- endpoints ---------------------------------------------------------------------------------

    def exchange_status(self, query: Query) -> Result:
        return 200, {"exchange_active": True, "trading_active": True, "exchange_estimated_resume_time": None}

    def series_list(self, query: Query) -> Result:
        category = _one(query, "category")
        return 200, {"series": [objects.series_object(s) for s in self.model.series.values()
                                if category is None or s.category == category]}

    def series_one(self, query: Query, ticker: str) -> Result:
        s = self.model.series.get(ticker)
        if s is None:
            return _error(404, "not_found", f"series {ticker} not found")
        return 200, {"series": objects.series_object(s)}

    def events_list(self, query: Query) -> Result:
        default, high = EVENTS_LIMIT
        limit = _int(query, "limit", default, 1, high)
        start = _decode_cursor(query, "e") or 0
        status, series = _one(query, "status"), _one(query, "series_ticker")
        if status not in (None, "", "unopened", "open", "closed", "settled"):
            msg = f"invalid status {status!r}"
            raise BadRequest(msg)
        nested = _one(query, "with_nested_markets") == "true"
        events = self.model.event_list
        page: list[dict[str, Any]] = []
        i = start
        while i < len(events) and len(page) < limit:
            ev = events[i]
            i += 1
            if (series and ev.series_ticker != series) or (status and objects.event_status(self.model, ev) != status):
                continue
            page.append(objects.event_object(self.model, ev, nested))
        return 200, {"events": page, "cursor": _encode_cursor("e", i) if i < len(events) else ""}

    def event_one(self, query: Query, ticker: str) -> Result:
        ev = self.model.events.get(ticker)
        if ev is None:
            return _error(404, "not_found", f"event {ticker} not found")
        nested = _one(query, "with_nested_markets") == "true"
        markets = [objects.market_object(self.model.markets[t], self.model.legacy) for t in ev.markets]
        return 200, {"event": objects.event_object(self.model, ev, nested), "markets": [] if nested else markets}

    def markets_list(self, query: Query) -> Result:
        default, high = MARKETS_LIMIT
        limit = _int(query, "limit", default, 1, high)
        start = _decode_cursor(query, "m") or 0
        keep = self._market_filter(query)
        markets = self.model.market_list
        page: list[dict[str, Any]] = []
        i = start
        while i < len(markets) and len(page) < limit:
            m = markets[i]
            i += 1
            if keep(m):
                page.append(objects.market_object(m, self.model.legacy))
        return 200, {"markets": page, "cursor": _encode_cursor("m", i) if i < len(markets) else ""}

    def _market_filter(self, query: Query) -> Callable[[Any], bool]:
        event, series, status = _one(query, "event_ticker"), _one(query, "series_ticker"), _one(query, "status")
        tickers = {t for raw in query.get("tickers", []) for t in raw.split(",") if t}
        mve = _one(query, "mve_filter")
        if status and status not in MARKET_STATUS_FILTERS:
            msg = f"invalid status {status!r} (one of {', '.join(MARKET_STATUS_FILTERS)})"
            raise BadRequest(msg)
        if mve not in (None, "", "only", "exclude"):
            msg = f"invalid mve_filter {mve!r}"
            raise BadRequest(msg)
        statuses = MARKET_STATUS_FILTERS[status] if status else None
        bounds = {name: _int(query, name, -1, 0, 2**62) for name in
                  ("min_close_ts", "max_close_ts", "min_created_ts", "max_created_ts", "min_settled_ts",
                   "max_settled_ts")}

        def keep(m: Any) -> bool:
            if (event and m.event_ticker != event) or (series and m.series_ticker != series):
                return False
            if (tickers and m.ticker not in tickers) or (statuses is not None and m.status not in statuses):
                return False
            if mve and (m.ticker.startswith(MVE_PREFIX) != (mve == "only")):
                return False
            for name, value in bounds.items():
                if value < 0:
                    continue
                field = {"close": m.close_ts, "created": m.created_ts, "settled": m.settled_ts}[name.split("_")[1]]
                if field is None or (field < value if name.startswith("min") else field > value):
                    return False
            return True

        return keep

    def market_one(self, query: Query, ticker: str) -> Result:
        m = self.model.markets.get(ticker)
        if m is None:
            return _error(404, "not_found", f"market {ticker} not found")
        return 200, {"market": objects.market_object(m, self.model.legacy)}

    def orderbook(self, query: Query, ticker: str) -> Result:
        m = self.model.markets.get(ticker)
        if m is None:
            return _error(404, "not_found", f"market {ticker} not found")
        depth = _int(query, "depth", 0, 0, ORDERBOOK_MAX_DEPTH)
        yes, no = m.book.copy_levels()
        return 200, objects.orderbook_object(yes, no, depth, self.model.legacy)

    def orderbooks(self, query: Query) -> Result:
        tickers = [t for raw in query.get("tickers", []) for t in raw.split(",") if t]
        if not 1 <= len(tickers) <= ORDERBOOKS_MAX_TICKERS:
            msg = f"tickers: between 1 and {ORDERBOOKS_MAX_TICKERS} required, got {len(tickers)}"
            raise BadRequest(msg)
        books = []
        for ticker in tickers:
            m = self.model.markets.get(ticker)
            if m is not None:
                books.append({"ticker": ticker, **objects.orderbook_object(*m.book.copy_levels(), 0,
                                                                          self.model.legacy)})
        return 200, {"orderbooks": books}

    def trades_list(self, query: Query) -> Result:
        default, high = TRADES_LIMIT
        limit = _int(query, "limit", default, 1, high)
        before = _decode_cursor(query, "t")
        ticker = _one(query, "ticker")
        min_ts = _int(query, "min_ts", 0, 0, 2**62) * 1_000_000_000
        max_ts = _int(query, "max_ts", 2**62, 0, 2**62)
        page: list[dict[str, Any]] = []
        last = None
        for t in reversed(self.model.trades):
            if before is not None and t.number >= before:
                continue
            if (ticker and t.ticker != ticker) or t.ts_ns < min_ts or t.ts_ns // 1_000_000_000 > max_ts:
                continue
            if len(page) == limit:
                last = page[-1]["_n"]
                break
            page.append({"_n": t.number, **objects.trade_object(t, self.model.legacy)})
        for obj in page:
            del obj["_n"]
        return 200, {"trades": page, "cursor": _encode_cursor("t", last) if last is not None else ""}
