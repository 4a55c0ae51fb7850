"""Market discovery over REST: filters, pagination, rate limits, and the ``markets`` setting."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from connector_helpers import Recorder, connector

from ssmd.connector.rest import RestClient
from ssmd.connector.selection import Selection
from ssmd.connector.types import RestError
from ssmd.errors import ConfigError
from ssmd.kalshi.auth import load_private_key
from ssmd.sim import Simulator


def rest_client(sim: Simulator, key_path: Path, **kw: object) -> RestClient:
    assert sim.client_key is not None
    return RestClient(sim.rest_url, key_id=sim.client_key.key_id, private_key=load_private_key(key_path),
                      **kw)  # type: ignore[arg-type]


async def test_pagination_follows_the_cursor_to_the_end(sim: Simulator, key_path: Path) -> None:
    async with rest_client(sim, key_path, rate=None) as rest:
        markets = await rest.markets(status="open", limit=7)
        assert rest.requests == 5  # 30 markets, 7 per page
    tickers = [m["ticker"] for m in markets]
    assert len(tickers) == len(set(tickers)) == 30
    assert set(tickers) == {m.ticker for m in sim.model.market_list if m.status == "active"}


async def test_429_is_retried_with_backoff_until_served(sim: Simulator, key_path: Path) -> None:
    # Basic tier: 20 signed requests at once, then 20/s; 45 at once must be throttled, then all served.
    async with rest_client(sim, key_path, rate=None, backoff_initial=0.1, backoff_cap=0.8) as rest:
        bodies = await asyncio.gather(*(rest.get("/exchange/status") for _ in range(45)))
        assert all(b["exchange_active"] is True for b in bodies)
        assert rest.throttled > 0 and rest.retried >= rest.throttled


async def test_client_pacing_avoids_429(sim: Simulator, key_path: Path) -> None:
    async with rest_client(sim, key_path, rate=40.0) as rest:
        await asyncio.gather(*(rest.get("/exchange/status") for _ in range(30)))
        assert rest.throttled == 0


async def test_a_client_error_is_precise_and_not_retried(sim: Simulator, key_path: Path) -> None:
    async with rest_client(sim, key_path) as rest:
        with pytest.raises(RestError, match=r"GET /markets: HTTP 400: .*limit must be within 1\.\.1000") as e:
            await rest.markets(limit=5000)
        assert e.value.status == 400 and rest.requests == 1
        assert await rest.event_series("NO-SUCH-EVENT") is None


async def test_filters_select_series_events_and_tickers(sim: Simulator, key_path: Path) -> None:
    model = sim.model
    series = model.market_list[0].series_ticker
    event = next(m.event_ticker for m in model.market_list if m.series_ticker != series)
    ticker = next(m.ticker for m in model.market_list if m.series_ticker != series and m.event_ticker != event)
    expected = {m.ticker for m in model.market_list
                if m.series_ticker == series or m.event_ticker == event or m.ticker == ticker}
    assert len(expected) < 30
    rec = Recorder()
    async with connector(sim, key_path, rec, markets=(f"series:{series}", f"event:{event}", ticker)) as c:
        async with asyncio.timeout(5):
            await c.wait_ready()
        assert c.markets == expected
        assert {f["msg"]["market_ticker"] for f in rec.of_type("orderbook_snapshot")} == expected


async def test_all_open_markets_by_default(sim: Simulator, key_path: Path) -> None:
    rec = Recorder()
    async with connector(sim, key_path, rec) as c:
        async with asyncio.timeout(5):
            await c.wait_ready()
        assert c.markets == set(sim.model.markets)
        assert c.status().discovered


def test_selection_parsing() -> None:
    s = Selection.parse(["series:kxbtc", " event:KXBTC-26JAN01 ", "KXETH-26JAN01-T3000", ""])
    assert s.series == {"KXBTC"} and s.events == {"KXBTC-26JAN01"} and s.tickers == {"KXETH-26JAN01-T3000"}
    assert s.matches("X-1", "E", "KXBTC") and s.matches("X-1", "KXBTC-26JAN01", None)
    assert not s.matches("X-1", "E", "OTHER")
    assert Selection.parse([]).everything and not Selection.parse([]).matches("KXMVE-1", None, None)
    with pytest.raises(ConfigError, match=r"'series:' names no series"):
        Selection.parse(["series:"])
    with pytest.raises(ConfigError, match=r"unknown filter 'serie'"):
        Selection.parse(["serie:KXBTC"])
