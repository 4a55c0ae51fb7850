"""Message bodies (the ``msg`` object of a frame) in the simulator's wire format.

Bodies are JSON text built once per model message and shared by every subscription that receives it;
:mod:`ssmd.sim.session` wraps them into frames with ``type``, ``sid`` and ``seq``. Hot message kinds are
formatted with f-strings (tickers are ``[A-Z0-9.-]``, nothing needs escaping); rare ones use msgspec.

Two formats: current (dollar strings with 4 decimals, fixed-point counts with 2, ``ts_ms``) and legacy
(integer cents and whole contracts, the pre-2026 shapes, for replay tests of old recordings).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from ssmd.kalshi.fixedpoint import ONE_DOLLAR, cents, count_str, price_str, whole_contracts
from ssmd.sim.book import Levels, Side
from ssmd.sim.universe import STRUCTURES, Event, Market, Series

_encode = msgspec.json.Encoder().encode


class Out:
    """One model message: routed by ``channel`` and ``ticker``, numbered ``n`` (from 1) in model order.

    :meth:`yes_body` is the body for ``use_yes_price`` subscriptions (it differs for NO-side deltas).
    """

    __slots__ = ("_yes", "body", "channel", "n", "ticker", "type", "yes_args")

    def __init__(self, n: int, type_: str, channel: str, ticker: str, body: str) -> None:
        self.n = n
        self.type = type_
        self.channel = channel
        self.ticker = ticker
        self.body = body
        self.yes_args: tuple[Market, Side, int, int, int, bool] | None = None
        self._yes: str | None = None

    def yes_body(self) -> str:
        """The body on the YES price scale, rendered on first use (few subscriptions ask for it)."""
        if self.yes_args is None:
            return self.body
        if self._yes is None:
            self._yes = delta_body(*self.yes_args)
        return self._yes


_second = -1
_second_text = ""
_last_ns = -1
_last_text = ""


def rfc3339(ts_ns: int) -> str:
    """UTC RFC 3339 with microseconds and a ``Z``, e.g. ``2026-08-27T13:56:23.996443Z``; memoized."""
    global _second, _second_text, _last_ns, _last_text
    if ts_ns == _last_ns:
        return _last_text
    seconds, frac = divmod(ts_ns, 1_000_000_000)
    if seconds != _second:
        _second, _second_text = seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    _last_ns, _last_text = ts_ns, f"{_second_text}.{frac // 1000:06d}Z"
    return _last_text


def rfc3339_s(ts_s: int) -> str:
    """UTC RFC 3339 to the second, as REST objects carry times (``2026-05-13T02:30:00Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_s))


def _ids(m: Market) -> str:
    if not m.wire_ids:
        m.wire_ids = f'"market_ticker":"{m.ticker}","market_id":"{m.market_id}"'
    return m.wire_ids


def delta_body(m: Market, side: Side, price: int, delta: int, ts_ns: int, legacy: bool) -> str:
    if legacy:
        return (f'{{"market_ticker":"{m.ticker}","price":{cents(price)},'
                f'"delta":{whole_contracts(delta)},"side":"{side}"}}')
    return (f'{{{m.wire_ids or _ids(m)},"price_dollars":"{price_str(price)}","delta_fp":"{count_str(delta)}",'
            f'"side":"{side}","ts":"{rfc3339(ts_ns)}","ts_ms":{ts_ns // 1_000_000}}}')


def _levels(levels: Levels, legacy: bool) -> str:
    if legacy:
        return "[" + ",".join(f"[{cents(p)},{whole_contracts(s)}]" for p, s in levels) + "]"
    return "[" + ",".join(f'["{price_str(p)}","{count_str(s)}"]' for p, s in levels) + "]"


def snapshot_body(ticker: str, market_id: str, yes: Levels, no: Levels, use_yes_price: bool, legacy: bool) -> str:
    """Snapshot ``msg``; an empty side's key is omitted; ``use_yes_price`` puts NO levels on the YES scale."""
    if use_yes_price:
        no = sorted((ONE_DOLLAR - p, s) for p, s in no)
    parts = [f'"market_ticker":"{ticker}"']
    if not legacy:
        parts.append(f'"market_id":"{market_id}"')
    yes_key, no_key = ("yes", "no") if legacy else ("yes_dollars_fp", "no_dollars_fp")
    if yes:
        parts.append(f'"{yes_key}":{_levels(yes, legacy)}')
    if no:
        parts.append(f'"{no_key}":{_levels(no, legacy)}')
    return "{" + ",".join(parts) + "}"


def ticker_body(m: Market, ts_ns: int, legacy: bool, top: tuple[int, int, int, int] | None = None) -> str:
    """``top`` is ``m.book.top()`` when the caller has it already."""
    yes_bid, yes_bid_size, yes_ask, yes_ask_size = top or m.book.top()
    dollar_volume = m.value_traded // (100 * ONE_DOLLAR)
    dollar_oi = m.open_interest // 100
    ts = ts_ns // 1_000_000_000
    if legacy:
        return (f'{{"market_id":"{m.market_id}","market_ticker":"{m.ticker}","price":{cents(m.last_price)},'
                f'"yes_bid":{cents(yes_bid)},"yes_ask":{cents(yes_ask)},"volume":{whole_contracts(m.volume)},'
                f'"open_interest":{whole_contracts(m.open_interest)},"dollar_volume":{dollar_volume},'
                f'"dollar_open_interest":{dollar_oi},"ts":{ts}}}')
    return (f'{{"market_id":"{m.market_id}","market_ticker":"{m.ticker}",'
            f'"price_dollars":"{price_str(m.last_price)}","yes_bid_dollars":"{price_str(yes_bid)}",'
            f'"yes_ask_dollars":"{price_str(yes_ask)}","volume_fp":"{count_str(m.volume)}",'
            f'"open_interest_fp":"{count_str(m.open_interest)}","dollar_volume":{dollar_volume},'
            f'"dollar_open_interest":{dollar_oi},"yes_bid_size_fp":"{count_str(yes_bid_size)}",'
            f'"yes_ask_size_fp":"{count_str(yes_ask_size)}",'
            f'"last_trade_size_fp":"{count_str(m.last_trade_size)}","ts":{ts},"ts_ms":{ts_ns // 1_000_000},'
            f'"time":"{rfc3339(ts_ns)}"}}')


def trade_body(m: Market, trade_id: str, yes_price: int, count: int, taker: Side, ts_ns: int, legacy: bool) -> str:
    """A public trade; ``taker`` is the outcome the taker bought (``yes`` lifts NO bids = book side bid)."""
    ts = ts_ns // 1_000_000_000
    if legacy:
        return (f'{{"market_ticker":"{m.ticker}","yes_price":{cents(yes_price)},'
                f'"no_price":{cents(ONE_DOLLAR - yes_price)},"count":{whole_contracts(count)},'
                f'"taker_side":"{taker}","ts":{ts}}}')
    book_side = "bid" if taker == "yes" else "ask"
    return (f'{{"trade_id":"{trade_id}","market_ticker":"{m.ticker}",'
            f'"yes_price_dollars":"{price_str(yes_price)}","no_price_dollars":"{price_str(ONE_DOLLAR - yes_price)}",'
            f'"count_fp":"{count_str(count)}","taker_side":"{taker}","taker_outcome_side":"{taker}",'
            f'"taker_book_side":"{book_side}","is_block_trade":false,"ts":{ts},"ts_ms":{ts_ns // 1_000_000}}}')


def price_ranges(structure: str) -> list[dict[str, str]]:
    return [{"start": price_str(a), "end": price_str(b), "step": price_str(s)} for a, b, s in STRUCTURES[structure]]


def lifecycle_body(m: Market, event_type: str, **extra: Any) -> str:
    body: dict[str, Any] = {"market_ticker": m.ticker, "event_type": event_type, "exchange_index": 0}
    body.update(extra)
    return _encode(body).decode()


def created_extra(m: Market) -> dict[str, Any]:
    """Fields of a ``created`` lifecycle message beyond ticker and type."""
    return {
        "open_ts": m.open_ts, "close_ts": m.close_ts,
        "price_level_structure": m.structure, "price_ranges": price_ranges(m.structure),
        "additional_metadata": {
            "name": m.title, "title": m.title, "yes_sub_title": m.yes_sub_title,
            "no_sub_title": m.no_sub_title, "rules_primary": f"Resolves Yes if {m.yes_sub_title}.",
            "rules_secondary": "", "can_close_early": True, "event_ticker": m.event_ticker,
            "expected_expiration_ts": m.close_ts, "strike_type": m.strike_type, "floor_strike": m.floor_strike,
        },
    }


def event_lifecycle_body(ev: Event) -> str:
    return _encode({
        "event_ticker": ev.event_ticker, "exchange_index": 0, "title": ev.title, "subtitle": ev.sub_title,
        "collateral_return_type": ev.collateral_return_type, "series_ticker": ev.series_ticker,
        "strike_date": ev.strike_date,
    }).decode()


def fee_update_body(ev: Event, series: Series, multiplier: float | None) -> str:
    return _encode({
        "event_ticker": ev.event_ticker, "fee_type_override": series.fee_type if multiplier else None,
        "fee_multiplier_override": multiplier,
    }).decode()
