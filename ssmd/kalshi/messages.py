"""Typed shapes of Kalshi WebSocket frames (current fixed-point wire format), for msgspec decoding.

Prices and counts stay strings here (parse them with :mod:`ssmd.kalshi.fixedpoint`); unknown fields are
ignored because Kalshi adds fields often. Side keys of a snapshot are optional: an empty side is omitted.
Decode a frame in two steps: :class:`Envelope` for ``type``/``sid``/``seq``, then the ``msg`` struct for
that type (``msgspec.json.decode(frame, type=Frame[OrderbookDelta])``).
"""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

import msgspec

Level = tuple[str, str]
"""One book level: (price dollars, aggregate count)."""

M = TypeVar("M")


class Envelope(msgspec.Struct):
    type: str
    id: int | None = None
    sid: int | None = None
    seq: int | None = None


class Frame(msgspec.Struct, Generic[M]):
    type: str
    msg: M
    id: int | None = None
    sid: int | None = None
    seq: int | None = None


class OrderbookSnapshot(msgspec.Struct):
    market_ticker: str
    market_id: str
    yes_dollars_fp: list[Level] | None = None
    no_dollars_fp: list[Level] | None = None


class OrderbookDelta(msgspec.Struct):
    market_ticker: str
    market_id: str
    price_dollars: str
    delta_fp: str
    side: Literal["yes", "no"]
    ts: str | None = None
    ts_ms: int | None = None
    client_order_id: str | None = None
    subaccount: int | None = None


class Ticker(msgspec.Struct):
    market_ticker: str
    market_id: str
    price_dollars: str
    yes_bid_dollars: str
    yes_ask_dollars: str
    volume_fp: str
    open_interest_fp: str
    dollar_volume: int
    dollar_open_interest: int
    yes_bid_size_fp: str
    yes_ask_size_fp: str
    last_trade_size_fp: str
    ts: int
    ts_ms: int | None = None
    time: str | None = None


class Trade(msgspec.Struct):
    trade_id: str
    market_ticker: str
    yes_price_dollars: str
    no_price_dollars: str
    count_fp: str
    taker_side: Literal["yes", "no"]
    taker_outcome_side: Literal["yes", "no"]
    taker_book_side: Literal["bid", "ask"]
    is_block_trade: bool
    ts: int
    ts_ms: int | None = None


class PriceRange(msgspec.Struct):
    start: str
    end: str
    step: str


class MarketLifecycle(msgspec.Struct):
    market_ticker: str
    event_type: str
    exchange_index: int | None = None
    open_ts: int | None = None
    close_ts: int | None = None
    determination_ts: int | None = None
    result: str | None = None
    settlement_value: str | None = None
    settled_ts: int | None = None
    is_deactivated: bool | None = None
    price_level_structure: str | None = None
    price_ranges: list[PriceRange] | None = None
    additional_metadata: dict[str, object] | None = None


class EventLifecycle(msgspec.Struct):
    event_ticker: str
    series_ticker: str
    title: str
    subtitle: str = ""
    collateral_return_type: str = ""
    exchange_index: int | None = None
    strike_date: int | None = None
    strike_period: str | None = None


class EventFeeUpdate(msgspec.Struct):
    event_ticker: str
    fee_type_override: str | None = None
    fee_multiplier_override: float | None = None


class Subscribed(msgspec.Struct):
    channel: str
    sid: int


class ErrorBody(msgspec.Struct):
    code: int
    msg: str
    market_ticker: str | None = None
    market_tickers: list[str] | None = None
