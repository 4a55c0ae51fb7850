"""REST objects (Market, Event, Series, Trade, order book) built from the model's live state.

Market summary prices derive from the same book the WebSocket streams: yes_bid = best YES bid,
yes_ask = 1 - best NO bid (sentinels 0.0000 / 1.0000 for an empty side), no_bid = 1 - yes_ask,
no_ask = 1 - yes_bid.
"""

from __future__ import annotations

from typing import Any

from ssmd.kalshi.fixedpoint import ONE_DOLLAR, cents, count_str, price_str, whole_contracts
from ssmd.kalshi.protocol import MarketStatus
from ssmd.sim.book import Levels
from ssmd.sim.model import MarketModel, TradeRecord
from ssmd.sim.render import price_ranges, rfc3339, rfc3339_s
from ssmd.sim.universe import Event, Market, Series

_SETTLEMENT_TIMER_S = 3600


def market_object(m: Market, legacy: bool) -> dict[str, Any]:
    yes_bid, yes_bid_size, yes_ask, yes_ask_size = m.book.top()
    obj: dict[str, Any] = {
        "ticker": m.ticker, "event_ticker": m.event_ticker, "market_type": "binary",
        "title": m.title, "subtitle": "", "yes_sub_title": m.yes_sub_title, "no_sub_title": m.no_sub_title,
        "created_time": rfc3339_s(m.created_ts), "updated_time": rfc3339_s(m.updated_ts),
        "open_time": rfc3339_s(m.open_ts), "close_time": rfc3339_s(m.close_ts),
        "expected_expiration_time": rfc3339_s(m.close_ts),
        "latest_expiration_time": rfc3339_s(m.close_ts + 7 * 86400),
        "settlement_timer_seconds": _SETTLEMENT_TIMER_S, "status": m.status.value,
        "result": m.result, "can_close_early": True, "fractional_trading_enabled": True,
        "expiration_value": "", "rules_primary": f"Resolves Yes if {m.yes_sub_title}.", "rules_secondary": "",
        "price_level_structure": m.structure, "price_ranges": price_ranges(m.structure),
        "settlement_bounds_type": "default", "strike_type": m.strike_type, "floor_strike": m.floor_strike,
    }
    if m.cap_strike is not None:
        obj["cap_strike"] = m.cap_strike
    if m.settlement_value is not None:
        obj["settlement_value_dollars"] = price_str(m.settlement_value)
    if m.settled_ts is not None:
        obj["settlement_ts"] = rfc3339_s(m.settled_ts)
    no_bid, no_ask = ONE_DOLLAR - yes_ask, ONE_DOLLAR - yes_bid
    if legacy:
        obj.update({
            "yes_bid": cents(yes_bid), "yes_ask": cents(yes_ask), "no_bid": cents(no_bid), "no_ask": cents(no_ask),
            "last_price": cents(m.last_price), "previous_yes_bid": 0, "previous_yes_ask": 0,
            "previous_price": 0, "volume": whole_contracts(m.volume), "volume_24h": whole_contracts(m.volume),
            "open_interest": whole_contracts(m.open_interest), "liquidity": 0, "notional_value": 100,
            "response_price_units": "usd_cent",
        })
        return obj
    obj.update({
        "notional_value_dollars": "1.0000",
        "yes_bid_dollars": price_str(yes_bid), "yes_bid_size_fp": count_str(yes_bid_size),
        "yes_ask_dollars": price_str(yes_ask), "yes_ask_size_fp": count_str(yes_ask_size),
        "no_bid_dollars": price_str(no_bid), "no_ask_dollars": price_str(no_ask),
        "last_price_dollars": price_str(m.last_price),
        "previous_yes_bid_dollars": "0.0000", "previous_yes_ask_dollars": "0.0000",
        "previous_price_dollars": "0.0000",
        "volume_fp": count_str(m.volume), "volume_24h_fp": count_str(m.volume),
        "open_interest_fp": count_str(m.open_interest), "liquidity_dollars": "0.0000",
    })
    return obj


def event_status(model: MarketModel, ev: Event) -> str:
    statuses = {model.markets[t].status for t in ev.markets}
    if statuses & {MarketStatus.ACTIVE, MarketStatus.INACTIVE}:
        return "open"
    if statuses <= {MarketStatus.FINALIZED}:
        return "settled"
    return "closed"


def event_object(model: MarketModel, ev: Event, nested: bool) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "event_ticker": ev.event_ticker, "series_ticker": ev.series_ticker, "title": ev.title,
        "sub_title": ev.sub_title, "collateral_return_type": ev.collateral_return_type,
        "mutually_exclusive": ev.mutually_exclusive, "category": model.series[ev.series_ticker].category,
        "strike_date": rfc3339_s(ev.strike_date), "available_on_brokers": False, "product_metadata": {},
    }
    if nested:
        obj["markets"] = [market_object(model.markets[t], model.legacy) for t in ev.markets]
    return obj


def series_object(s: Series) -> dict[str, Any]:
    return {
        "ticker": s.ticker, "frequency": s.frequency, "title": s.title, "category": s.category,
        "categories": [s.category], "tags": [], "settlement_sources": [],
        "contract_url": f"https://kalshi.com/markets/{s.ticker.lower()}", "contract_terms_url": "",
        "fee_type": s.fee_type, "fee_multiplier": s.fee_multiplier, "additional_prohibitions": [],
    }


def trade_object(t: TradeRecord, legacy: bool) -> dict[str, Any]:
    obj: dict[str, Any] = {"trade_id": t.trade_id, "ticker": t.ticker}
    if legacy:
        obj.update({"count": whole_contracts(t.count), "yes_price": cents(t.yes_price),
                    "no_price": cents(ONE_DOLLAR - t.yes_price)})
    else:
        obj.update({"count_fp": count_str(t.count), "yes_price_dollars": price_str(t.yes_price),
                    "no_price_dollars": price_str(ONE_DOLLAR - t.yes_price)})
    obj.update({
        "taker_side": t.taker, "taker_outcome_side": t.taker, "taker_book_side": "bid" if t.taker == "yes" else "ask",
        "is_block_trade": False, "created_time": rfc3339(t.ts_ns),
    })
    return obj


def orderbook_object(yes: Levels, no: Levels, depth: int, legacy: bool) -> dict[str, Any]:
    """Both sides ascending (best bid last); ``depth`` > 0 keeps the best ``depth`` levels of each."""
    if depth:
        yes, no = yes[-depth:], no[-depth:]
    if legacy:
        return {"orderbook": {
            "yes": [[cents(p), whole_contracts(s)] for p, s in yes] or None,
            "no": [[cents(p), whole_contracts(s)] for p, s in no] or None,
        }}
    return {"orderbook_fp": {
        "yes_dollars": [[price_str(p), count_str(s)] for p, s in yes],
        "no_dollars": [[price_str(p), count_str(s)] for p, s in no],
    }}
