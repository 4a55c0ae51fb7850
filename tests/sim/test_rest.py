"""Checklist 21-23: REST endpoints, pagination and filters, auth and rate limiting."""

from __future__ import annotations

import httpx

from ssmd.kalshi.auth import auth_headers, generate_private_key
from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import test_config as make_config


async def test_exchange_series_events_and_market_objects(sim: Simulator) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        assert (await http.get("/exchange/status")).json() == {
            "exchange_active": True, "trading_active": True, "exchange_estimated_resume_time": None}
        series = (await http.get("/series")).json()["series"]
        assert series and {"ticker", "frequency", "title", "category", "fee_type", "contract_url"} <= set(series[0])
        one = (await http.get(f"/series/{series[0]['ticker']}")).json()["series"]
        assert one == series[0]
        events = (await http.get("/events", params={"with_nested_markets": "true"})).json()
        assert events["cursor"] == "" and sum(len(e["markets"]) for e in events["events"]) == 12
        market = events["events"][0]["markets"][0]
        required = {"ticker", "event_ticker", "market_type", "yes_sub_title", "no_sub_title", "created_time",
                    "updated_time", "open_time", "close_time", "latest_expiration_time", "settlement_timer_seconds",
                    "status", "notional_value_dollars", "yes_bid_dollars", "yes_ask_dollars", "no_bid_dollars",
                    "no_ask_dollars", "yes_bid_size_fp", "yes_ask_size_fp", "last_price_dollars",
                    "previous_yes_bid_dollars", "previous_yes_ask_dollars", "previous_price_dollars", "volume_fp",
                    "volume_24h_fp", "liquidity_dollars", "open_interest_fp", "result", "can_close_early",
                    "fractional_trading_enabled", "expiration_value", "rules_primary", "rules_secondary",
                    "price_level_structure", "price_ranges", "settlement_bounds_type"}
        assert required <= set(market)
        assert market["price_ranges"] == [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}]
        r = await http.get("/markets/NOPE-1")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_markets_cursor_pagination_and_filters(sim: Simulator) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        seen, cursor = [], None
        while True:
            params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
            page = (await http.get("/markets", params=params)).json()
            seen += [m["ticker"] for m in page["markets"]]
            cursor = page["cursor"]
            if cursor == "":
                break
        assert seen == list(sim.model.markets)
        first = sim.model.market_list[0]
        by_event = (await http.get("/markets", params={"event_ticker": first.event_ticker})).json()["markets"]
        assert {m["event_ticker"] for m in by_event} == {first.event_ticker}
        by_series = (await http.get("/markets", params={"series_ticker": first.series_ticker})).json()["markets"]
        assert by_series and {m["ticker"].split("-")[0] for m in by_series} == {first.series_ticker}
        picked = ",".join(seen[:3])
        assert [m["ticker"] for m in (await http.get("/markets", params={"tickers": picked})).json()["markets"]] \
            == seen[:3]
        assert len((await http.get("/markets", params={"status": "open"})).json()["markets"]) == 12
        assert (await http.get("/markets", params={"status": "settled"})).json()["markets"] == []
        assert (await http.get("/markets", params={"mve_filter": "only"})).json()["markets"] == []
        bad = await http.get("/markets", params={"status": "active"})
        assert bad.status_code == 400
        assert (await http.get("/markets", params={"limit": 1001})).status_code == 400
        assert (await http.get("/markets", params={"cursor": "garbage!"})).status_code == 400
        books = (await http.get("/markets/orderbooks", params=[("tickers", seen[0]), ("tickers", seen[1])])).json()
        assert [b["ticker"] for b in books["orderbooks"]] == seen[:2]


async def test_trades_newest_first_with_cursor_and_ticker_filter(sim: Simulator) -> None:
    await sim.step(1500)
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        everything = (await http.get("/markets/trades", params={"limit": 1000})).json()
        ids = [t["trade_id"] for t in everything["trades"]]
        assert ids == [t.trade_id for t in reversed(sim.model.trades)]
        page1 = (await http.get("/markets/trades", params={"limit": 10})).json()
        page2 = (await http.get("/markets/trades", params={"limit": 10, "cursor": page1["cursor"]})).json()
        assert [t["trade_id"] for t in page1["trades"] + page2["trades"]] == ids[:20]
        ticker = everything["trades"][0]["ticker"]
        mine = (await http.get("/markets/trades", params={"ticker": ticker, "limit": 1000})).json()["trades"]
        assert mine and {t["ticker"] for t in mine} == {ticker}
        t = everything["trades"][0]
        assert {"count_fp", "yes_price_dollars", "no_price_dollars", "taker_outcome_side", "taker_book_side",
                "created_time", "is_block_trade"} <= set(t)


async def test_rest_auth_is_optional_for_market_data_but_checked_when_sent(sim: Simulator) -> None:
    assert sim.client_key is not None
    path = "/trade-api/v2/markets"
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        signed = sim.client_key.headers("GET", path)
        assert (await http.get("/markets?limit=2", headers=signed)).status_code == 200
        forged = auth_headers(sim.client_key.key_id, generate_private_key(), "GET", path)
        r = await http.get("/markets", headers=forged)
        assert r.status_code == 401 and r.json()["error"]["details"] == "INCORRECT_API_KEY_SIGNATURE"
        r = await http.get("/portfolio/balance")
        assert r.status_code == 401


async def test_signed_requests_are_rate_limited_with_429() -> None:
    async with Simulator(make_config()) as sim:
        assert sim.client_key is not None
        sim.server.rest.READ_RATE = 0.1  # a full bucket (200 tokens = 20 requests) that barely refills
        statuses = []
        async with httpx.AsyncClient(base_url=sim.rest_url) as http:
            for _ in range(25):
                headers = sim.client_key.headers("GET", "/trade-api/v2/exchange/status")
                r = await http.get("/exchange/status", headers=headers)
                statuses.append(r.status_code)
                if r.status_code == 429:
                    assert r.json() == {"error": "too many requests"} and "retry-after" not in r.headers
                    break
        assert statuses[:20] == [200] * 20 and statuses[-1] == 429


async def test_settlement_path_reaches_finalized_through_dispute_sometimes() -> None:
    async with Simulator(make_config(lifecycle_prob=0.5)) as sim:
        seen: set[str] = set()
        for _ in range(300):
            await sim.step(5)
            seen |= {m.status.value for m in sim.model.markets.values()}
        async with httpx.AsyncClient(base_url=sim.rest_url) as http:
            settled = (await http.get("/markets", params={"status": "settled"})).json()["markets"]
    assert {"initialized", "active", "inactive", "closed", "determined", "disputed", "amended", "finalized"} <= seen
    assert settled and {m["status"] for m in settled} == {"finalized"} and all(m["result"] for m in settled)
