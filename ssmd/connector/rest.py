"""Kalshi REST market data: signed GETs, cursor pagination, and backoff on rate limits.

Contract of :class:`RestClient`:

- requests are signed when a key is given (``timestamp + GET + path``, path without the query string);
  unsigned market-data GETs work on Kalshi too, but signed ones get the account's rate limit;
- at most ``rate`` requests per second leave the client (Kalshi's Basic tier allows 20 reads/s);
- HTTP 429 (Kalshi sends no Retry-After), 5xx and connection errors are retried after a capped, jittered
  exponential backoff, up to ``retries`` times; any other 4xx raises :class:`RestError` at once;
- :meth:`paginate` passes the opaque ``cursor`` back unchanged until the server returns an empty one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec
from cryptography.hazmat.primitives.asymmetric import rsa

from ssmd.connector.backoff import Backoff
from ssmd.connector.types import RestError
from ssmd.kalshi.auth import auth_headers
from ssmd.kalshi.protocol import MARKETS_LIMIT

log = logging.getLogger("ssmd.connector")

Params = Mapping[str, str | int]


class RestClient:
    def __init__(self, base_url: str, *, key_id: str | None = None, private_key: rsa.RSAPrivateKey | None = None,
                 rate: float | None = 10.0, retries: int = 8, backoff_initial: float = 0.25,
                 backoff_cap: float = 10.0, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._root_path = urlsplit(self.base_url).path
        self._key_id, self._key = key_id, private_key
        self._interval = 1.0 / rate if rate else 0.0
        self._next_slot = 0.0
        self._pace = asyncio.Lock()
        self.retries = retries
        self._backoff = (backoff_initial, backoff_cap)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0
        self.throttled = 0
        self.retried = 0
        self.last_error = ""
        """The last failed attempt, even one that a retry later recovered ("" if none yet)."""

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _wait_turn(self) -> None:
        if not self._interval:
            return
        async with self._pace:
            now = time.monotonic()
            wait = self._next_slot - now
            self._next_slot = max(now, self._next_slot) + self._interval
        if wait > 0:
            await asyncio.sleep(wait)

    async def get(self, path: str, params: Params | None = None) -> Any:
        """``GET base_url + path`` as decoded JSON; see the module contract for retries and errors."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        backoff = Backoff(*self._backoff)
        query = {k: str(v) for k, v in (params or {}).items()}
        while True:
            await self._wait_turn()
            headers = {}
            if self._key_id and self._key is not None:
                headers = auth_headers(self._key_id, self._key, "GET", self._root_path + path)
            self.requests += 1
            try:
                async with self._session.get(self.base_url + path, params=query, headers=headers) as resp:
                    status, body = resp.status, await resp.read()
            except (aiohttp.ClientError, TimeoutError) as e:
                status, body = None, f"{type(e).__name__}: {e}".encode()
            if status == 200:
                try:
                    return msgspec.json.decode(body)
                except msgspec.DecodeError as e:
                    msg = f"GET {path}: response is not JSON: {e}"
                    raise RestError(msg, status=status, path=path) from None
            retryable = status is None or status == 429 or status >= 500
            if status == 429:
                self.throttled += 1
            self.last_error = f"GET {path}: " + (f"HTTP {status}: " if status else "") + body[:300].decode(
                errors="replace")
            if not retryable or backoff.attempt >= self.retries:
                raise RestError(self.last_error, status=status, path=path)
            self.retried += 1
            delay = backoff.next()
            log.debug("GET %s: %s, retrying in %.2fs", path, status or "connection error", delay)
            await asyncio.sleep(delay)

    async def paginate(self, path: str, key: str, params: Params | None = None) -> AsyncIterator[list[Any]]:
        """Pages of ``key`` (e.g. ``markets``) of a cursor-paginated list endpoint."""
        query: dict[str, str | int] = dict(params or {})
        while True:
            body = await self.get(path, query)
            if not isinstance(body, dict) or not isinstance(body.get(key), list):
                msg = f"GET {path}: expected an object with a {key!r} list"
                raise RestError(msg, status=200, path=path)
            yield body[key]
            cursor = body.get("cursor")
            if not cursor:
                return
            query["cursor"] = cursor

    async def markets(self, **filters: str | int) -> list[dict[str, Any]]:
        """Every market matching ``filters`` (``status``, ``series_ticker``, ``event_ticker``, ``tickers``...)."""
        params: dict[str, str | int] = {"limit": MARKETS_LIMIT[1], **filters}
        out: list[dict[str, Any]] = []
        async for page in self.paginate("/markets", "markets", params):
            out.extend(m for m in page if isinstance(m, dict) and isinstance(m.get("ticker"), str))
        return out

    async def event_series(self, event_ticker: str) -> str | None:
        """The series of an event (``GET /events/{ticker}``), None if the exchange does not know it."""
        try:
            body = await self.get(f"/events/{event_ticker}")
        except RestError as e:
            if e.status == 404:
                return None
            raise
        event = body.get("event") if isinstance(body, dict) else None
        series = event.get("series_ticker") if isinstance(event, dict) else None
        return series if isinstance(series, str) else None
