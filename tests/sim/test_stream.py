"""Checklist 11-19: seq per sid, message shapes, book semantics, REST/WS consistency, lifecycle."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import msgspec

from ssmd.kalshi import messages
from ssmd.sim.config import FaultConfig
from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import SimClient
from ssmd.sim.testing import test_config as make_config

ONE = Decimal(1)


def some(sim: Simulator, n: int) -> list[str]:
    return list(sim.model.markets)[:n]


class BookBuilder:
    """A client-side book built only from snapshot + delta frames (what a consumer would do)."""

    def __init__(self) -> None:
        self.books: dict[str, dict[str, dict[Decimal, Decimal]]] = {}

    def apply(self, f: dict[str, Any]) -> None:
        m = f["msg"]
        if f["type"] == "orderbook_snapshot":
            self.books[m["market_ticker"]] = {
                side: {Decimal(p): Decimal(s) for p, s in m.get(f"{side}_dollars_fp", [])} for side in ("yes", "no")}
        elif f["type"] == "orderbook_delta":
            levels = self.books[m["market_ticker"]][m["side"]]
            price = Decimal(m["price_dollars"])
            size = levels.get(price, Decimal(0)) + Decimal(m["delta_fp"])
            assert size >= 0, f"delta drove a level negative: {f}"
            if size:
                levels[price] = size
            else:
                del levels[price]

    def as_rest(self, ticker: str) -> dict[str, list[list[str]]]:
        book = self.books[ticker]
        return {f"{side}_dollars": [[f"{p:.4f}", f"{s:.2f}"] for p, s in sorted(book[side].items())]
                for side in ("yes", "no")}


async def test_seq_is_per_sid_contiguous_from_1_and_restarts_per_connection(sim: Simulator, client_for: Any) -> None:
    c = await client_for(sim)
    await c.subscribe(["orderbook_delta"], market_tickers=some(sim, 6))
    await c.subscribe(["trade"])
    await c.subscribe(["market_lifecycle_v2"])
    await c.subscribe(["ticker"])
    sim.model.lifecycle_prob = 0.05
    await sim.step(1500)
    frames = await c.drain()
    seqs: dict[int, list[int]] = {}
    for f in frames:
        if f["type"] == "ticker":
            assert "seq" not in f
        else:
            seqs.setdefault(f["sid"], []).append(f["seq"])
    assert set(seqs) == {1, 2, 3}
    assert seqs[1][0] == 7  # snapshots took 1..6
    for sid_seqs in seqs.values():
        assert sid_seqs == list(range(sid_seqs[0], sid_seqs[0] + len(sid_seqs)))
    c2 = await client_for(sim)
    first = await c2.subscribe(["orderbook_delta"], market_tickers=some(sim, 1))
    assert first[0]["msg"]["sid"] == 1 and first[1]["seq"] == 1


async def test_snapshot_and_delta_shapes(client: SimClient, sim: Simulator) -> None:
    frames = await client.subscribe(["orderbook_delta"], market_tickers=some(sim, 4))
    await sim.step(300)
    frames += await client.drain()
    snaps = [msgspec.json.decode(msgspec.json.encode(f), type=messages.Frame[messages.OrderbookSnapshot])
             for f in frames if f["type"] == "orderbook_snapshot"]
    for s in snaps:
        for levels in (s.msg.yes_dollars_fp or [], s.msg.no_dollars_fp or []):
            prices = [Decimal(p) for p, _ in levels]
            assert prices == sorted(prices) and len(set(prices)) == len(prices)
            assert all(len(p.split(".")[1]) == 4 and len(c.split(".")[1]) == 2 for p, c in levels)
        assert "ts" not in frames[1]["msg"]
    deltas = [f for f in frames if f["type"] == "orderbook_delta"]
    assert deltas
    for f in deltas:
        d = msgspec.json.decode(msgspec.json.encode(f["msg"]), type=messages.OrderbookDelta)
        assert d.ts is not None and d.ts.endswith("Z") and len(d.ts.split(".")[1]) == 7
        assert d.ts_ms is not None and Decimal(d.delta_fp) != 0 and d.client_order_id is None


async def test_rest_books_equal_books_built_from_ws_and_ticker_matches(client: SimClient, sim: Simulator) -> None:
    markets = some(sim, 5)
    frames = await client.subscribe(["orderbook_delta", "ticker"], market_tickers=markets)
    await sim.step(600)
    frames += await client.drain()
    builder = BookBuilder()
    last_ticker: dict[str, dict[str, Any]] = {}
    for f in frames:
        builder.apply(f)
        if f["type"] == "ticker":
            last_ticker[f["msg"]["market_ticker"]] = f["msg"]
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        for ticker in markets:
            rest = (await http.get(f"/markets/{ticker}/orderbook")).json()
            assert rest == {"orderbook_fp": builder.as_rest(ticker)}
            market = (await http.get(f"/markets/{ticker}")).json()["market"]
            book = builder.books[ticker]
            best_yes = max(book["yes"], default=None)
            best_no = max(book["no"], default=None)
            yes_ask = ONE - best_no if best_no is not None else ONE
            assert Decimal(market["yes_bid_dollars"]) == (best_yes or 0)
            assert Decimal(market["yes_ask_dollars"]) == yes_ask
            assert Decimal(market["no_bid_dollars"]) == ONE - yes_ask
            assert best_yes is None or best_yes < yes_ask  # never crossed
            if ticker in last_ticker:
                t = last_ticker[ticker]
                assert Decimal(t["yes_ask_dollars"]) == yes_ask
                assert t["yes_bid_dollars"] == market["yes_bid_dollars"]
                assert t["volume_fp"] == market["volume_fp"]
                assert isinstance(t["dollar_volume"], int) and isinstance(t["ts"], int)
            depth1 = (await http.get(f"/markets/{ticker}/orderbook", params={"depth": 1})).json()["orderbook_fp"]
            assert depth1["yes_dollars"] == builder.as_rest(ticker)["yes_dollars"][-1:]


async def test_trades_consume_levels_with_matching_deltas(client: SimClient, sim: Simulator) -> None:
    markets = some(sim, 12)
    await client.subscribe(["orderbook_delta", "trade"], market_tickers=markets)
    outs = await sim.step(800)
    frames = await client.drain()
    trades = [f for f in frames if f["type"] == "trade"]
    assert len(trades) >= 5
    by_n = {o.n: o for o in outs}
    for f in trades:
        t = msgspec.json.decode(msgspec.json.encode(f["msg"]), type=messages.Trade)
        assert Decimal(t.yes_price_dollars) + Decimal(t.no_price_dollars) == 1
        assert t.taker_outcome_side == t.taker_side
        assert t.taker_book_side == ("bid" if t.taker_side == "yes" else "ask")
        assert len(t.trade_id) == 36 and t.ts_ms is not None and t.ts == t.ts_ms // 1000
    # Every trade is followed, in model order, by the delta removing what it took from the book.
    for o in outs:
        if o.type == "trade":
            t = msgspec.json.decode(o.body, type=messages.Trade)
            d = msgspec.json.decode(by_n[o.n + 1].body, type=messages.OrderbookDelta)
            consumed = "no" if t.taker_side == "yes" else "yes"
            price = Decimal(t.no_price_dollars if consumed == "no" else t.yes_price_dollars)
            assert (d.market_ticker, d.side, Decimal(d.price_dollars), Decimal(d.delta_fp)) == \
                (t.market_ticker, consumed, price, -Decimal(t.count_fp))


async def test_use_yes_price_reports_no_levels_on_the_yes_scale(sim: Simulator, client_for: Any) -> None:
    ticker = some(sim, 1)
    plain, yes_scale = await client_for(sim), await client_for(sim)
    a = await plain.subscribe(["orderbook_delta"], market_tickers=ticker)
    b = await yes_scale.subscribe(["orderbook_delta"], market_tickers=ticker, use_yes_price=True)
    no_plain = a[1]["msg"]["no_dollars_fp"]
    no_yes = b[1]["msg"]["no_dollars_fp"]
    assert sorted((f"{ONE - Decimal(p):.4f}", s) for p, s in no_plain) == [tuple(x) for x in no_yes]
    await sim.step(300)
    da = [f["msg"] for f in await plain.drain() if f["type"] == "orderbook_delta"]
    db = [f["msg"] for f in await yes_scale.drain() if f["type"] == "orderbook_delta"]
    assert len(da) == len(db) > 0
    for x, y in zip(da, db, strict=True):
        expected = x["price_dollars"] if x["side"] == "yes" else f"{ONE - Decimal(x['price_dollars']):.4f}"
        assert y["price_dollars"] == expected and y["side"] == x["side"]


async def test_ticker_initial_snapshot_and_all_markets(client: SimClient, sim: Simulator) -> None:
    frames = await client.subscribe(["ticker"], market_tickers=some(sim, 2), send_initial_snapshot=True)
    assert [f["msg"]["market_ticker"] for f in frames[1:]] == some(sim, 2)
    msg = msgspec.json.decode(msgspec.json.encode(frames[1]["msg"]), type=messages.Ticker)
    assert msg.price_dollars == "0.0000" and msg.time is not None


async def test_lifecycle_messages_and_state_machine() -> None:
    async with Simulator(make_config(lifecycle_prob=0.3, faults=FaultConfig(subpenny=0.01))) as sim:
        c = await SimClient.connect(sim)
        await c.subscribe(["market_lifecycle_v2"])
        outs = await sim.step(600)
        frames = await c.drain()
        await c.close()
    kinds = {f["msg"].get("event_type", f["type"]) for f in frames}
    assert {"created", "determined", "settled", "deactivated", "activated", "close_date_updated",
            "metadata_updated", "price_level_structure_updated", "event_fee_update", "event_lifecycle"} <= kinds
    for f in frames:
        if f["type"] == "market_lifecycle_v2":
            m = msgspec.json.decode(msgspec.json.encode(f["msg"]), type=messages.MarketLifecycle)
            if m.event_type == "created":
                assert m.open_ts and m.close_ts and m.price_ranges and m.additional_metadata
            if m.event_type == "determined":
                assert m.result in ("yes", "no") and m.settlement_value in ("1.0000", "0.0000")
    # No order flow outside active markets: every delta/trade hits a market that was active then.
    status: dict[str, str] = {}
    for o in outs:
        if o.type == "market_lifecycle_v2":
            event = msgspec.json.decode(o.body, type=messages.MarketLifecycle).event_type
            status[o.ticker] = {"deactivated": "inactive", "activated": "active", "created": "active",
                                "determined": "closed", "settled": "closed"}.get(event, status.get(o.ticker, "active"))
        elif o.type == "trade" or (o.type == "orderbook_delta" and msgspec.json.decode(o.body)["delta_fp"][0] != "-"):
            assert status.get(o.ticker, "active") == "active", o.body
    assert {m.status.value for m in sim.model.markets.values()} >= {"active", "finalized"}


async def test_legacy_format_uses_integer_cents() -> None:
    async with Simulator(make_config(legacy_format=True)) as sim:
        c = await SimClient.connect(sim)
        frames = await c.subscribe(["orderbook_delta", "trade", "ticker"], market_tickers=some(sim, 12))
        await sim.step(300)
        frames += await c.drain()
        async with httpx.AsyncClient(base_url=sim.rest_url) as http:
            rest = (await http.get(f"/markets/{some(sim, 1)[0]}/orderbook")).json()
        await c.close()
    snap = frames[3]["msg"]
    assert snap["yes"] and all(isinstance(p, int) and isinstance(s, int) for p, s in snap["yes"])
    by_type = {f["type"]: f["msg"] for f in frames}
    assert set(by_type["orderbook_delta"]) == {"market_ticker", "price", "delta", "side"}
    assert isinstance(by_type["trade"]["yes_price"], int) and isinstance(by_type["trade"]["count"], int)
    assert isinstance(by_type["ticker"]["yes_bid"], int) and "yes_bid_dollars" not in by_type["ticker"]
    assert set(rest) == {"orderbook"} and all(isinstance(p, int) for p, _ in rest["orderbook"]["yes"])


def test_summary_sentinels_for_empty_sides() -> None:
    from ssmd.sim.model import MarketModel
    from ssmd.sim.render import ticker_body

    m = next(iter(MarketModel(markets=1, seed=1).markets.values()))
    m.book.clear()
    t = msgspec.json.decode(ticker_body(m, 1_790_000_000_000_000_000, False), type=messages.Ticker)
    assert (t.yes_bid_dollars, t.yes_ask_dollars, t.yes_bid_size_fp, t.yes_ask_size_fp) == \
        ("0.0000", "1.0000", "0.00", "0.00")
