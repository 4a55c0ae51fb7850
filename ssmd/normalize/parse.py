"""Parse one Kalshi WebSocket frame into a typed message, in the current or a legacy wire format.

Formats (``shared/reference/kalshi-protocol.md`` §3): since March 2026 prices are dollar strings
(``"0.5600"``) and counts fixed-point strings (``"136.00"``); older recordings carry integer cents and
integer counts (``price``, ``delta``, ``yes``/``no`` level arrays, ``yes_price``, ``count``), and late 2025
frames carry both. Every form parses to exact integers: prices in ten-thousandths of a dollar (``_e4``),
counts in hundredths of a contract (``_e2``).

:func:`parse_frame` raises :class:`~ssmd.errors.DecodeError` naming what is wrong for a malformed
frame; unknown message types and unknown fields are not errors (Kalshi adds both often).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import msgspec

from ssmd.errors import DecodeError
from ssmd.kalshi import fixedpoint

BookSide = Literal["yes", "no"]
Levels = tuple[tuple[int, int], ...]
"""Book levels as (price_e4, size_e2), in the order the exchange sent them."""

_decoder = msgspec.json.Decoder(float_hook=Decimal)  # legacy frames may carry JSON floats: keep them exact

# The parsed messages below are not frozen: a frozen dataclass's __init__ costs twice as much (one
# object.__setattr__ per field), they are built for every frame, and they never leave the normalizer.


@dataclass(slots=True)
class Header:
    type: str
    sid: int | None
    seq: int | None
    id: int | None


@dataclass(slots=True)
class Snapshot:
    header: Header
    ticker: str
    yes: Levels
    no: Levels


@dataclass(slots=True)
class Delta:
    header: Header
    ticker: str
    side: BookSide
    price_e4: int
    delta_e2: int
    exchange_ns: int | None


@dataclass(slots=True)
class TradePrint:
    header: Header
    ticker: str
    trade_id: str
    yes_price_e4: int
    count_e2: int
    taker: str  # Kalshi's taker side word: "yes"/"no" or book side "bid"/"ask"
    exchange_ns: int | None
    block_trade: bool


@dataclass(slots=True)
class Lifecycle:
    header: Header
    ticker: str
    event_type: str
    exchange_ns: int | None
    result: str
    settlement_e4: int | None
    open_ns: int | None
    close_ns: int | None


@dataclass(slots=True)
class Other:
    """A frame with no normalized form: control replies, errors, ticker, event lifecycle, unknown types."""

    header: Header
    ticker: str
    msg: Any


Message = Snapshot | Delta | TradePrint | Lifecycle | Other


def parse_frame(data: bytes) -> Message:
    """Parse a frame's exact bytes; raise :class:`DecodeError` if it is not a well-formed Kalshi frame."""
    try:
        frame = _decoder.decode(data)
    except msgspec.DecodeError as e:
        msg = f"frame is not JSON: {e}"
        raise DecodeError(msg) from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        msg = "frame is not a JSON object with a string 'type'"
        raise DecodeError(msg)
    header = Header(frame["type"], _opt_int(frame, "sid"), _opt_int(frame, "seq"), _opt_int(frame, "id"))
    body = frame.get("msg")
    parser = _PARSERS.get(header.type)
    if parser is None or not isinstance(body, dict):
        ticker = body.get("market_ticker", "") if isinstance(body, dict) else ""
        return Other(header, ticker if isinstance(ticker, str) else "", body)
    try:
        return parser(header, body)
    except (KeyError, TypeError, ValueError, ArithmeticError) as e:
        detail = f"missing field {e}" if isinstance(e, KeyError) else str(e)
        msg = f"malformed {header.type} frame: {detail}"
        raise DecodeError(msg, seq=header.seq) from None


def _opt_int(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is not int:
        msg = f"field {key!r} must be an integer, got {value!r}"
        raise DecodeError(msg)
    return value


def _ticker(body: dict[str, Any]) -> str:
    ticker = body["market_ticker"]
    if not isinstance(ticker, str) or not ticker:
        msg = f"market_ticker must be a non-empty string, got {ticker!r}"
        raise ValueError(msg)
    return ticker


_CACHE_LIMIT = 1 << 16
"""Entries per parse cache (strings the exchange repeats); a full cache stops learning, never grows."""
_PRICES: dict[str, int] = {}
_COUNTS: dict[str, int] = {}


def _remember(cache: dict[str, int], text: str, units: int) -> int:
    if len(cache) < _CACHE_LIMIT:
        cache[text] = units
    return units


def _price_e4(value: Any) -> int:
    """A dollar price (string or exact number) in ten-thousandths."""
    if type(value) is str:
        units = _PRICES.get(value)  # prices repeat, and parsing one exactly costs ~2 us
        return units if units is not None else _remember(_PRICES, value, _parse_price_e4(value))
    return _parse_price_e4(value)


def _parse_price_e4(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, str | Decimal | int):
        msg = f"price {value!r} is not a dollar amount"
        raise ValueError(msg)
    units = fixedpoint.price_units(value if isinstance(value, str | Decimal) else Decimal(value))
    if not 0 <= units <= fixedpoint.ONE_DOLLAR:
        msg = f"price {value!r} is outside 0..1 dollars"
        raise ValueError(msg)
    return units


def _cents_e4(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= 100:
        msg = f"legacy price {value!r} is not integer cents 0..100"
        raise ValueError(msg)
    return value * fixedpoint.CENT


_COUNT_LIMIT = 1 << 63  # counts are stored as Int64/UInt64 hundredths: anything larger is malformed


def _count_e2(value: Any) -> int:
    """A count: a fixed-point string, or a legacy integer (whole contracts)."""
    if type(value) is str:
        units = _COUNTS.get(value)
        return units if units is not None else _remember(_COUNTS, value, _parse_count_e2(value))
    return _parse_count_e2(value)


def _parse_count_e2(value: Any) -> int:
    if type(value) is int:
        units = value * fixedpoint.COUNT_SCALE
    elif isinstance(value, str | Decimal):
        units = fixedpoint.count_units(value)
    else:
        msg = f"count {value!r} is not a number"
        raise ValueError(msg)
    if not -_COUNT_LIMIT < units < _COUNT_LIMIT:
        msg = f"count {value!r} is out of range"
        raise ValueError(msg)
    return units


def _levels(body: dict[str, Any], side: BookSide) -> Levels:
    """One snapshot side, from the newest representation the frame carries; absent = empty side."""
    if (levels := body.get(f"{side}_dollars_fp")) is not None:
        return tuple((_price_e4(p), _count_e2(c)) for p, c in levels)
    if (levels := body.get(f"{side}_dollars")) is not None:
        return tuple((_price_e4(p), _count_e2(c)) for p, c in levels)
    if (levels := body.get(side)) is not None:
        return tuple((_cents_e4(p), _count_e2(c)) for p, c in levels)
    return ()


def _snapshot(header: Header, body: dict[str, Any]) -> Snapshot:
    return Snapshot(header, _ticker(body), _levels(body, "yes"), _levels(body, "no"))


def _side(body: dict[str, Any]) -> BookSide:
    side = body["side"]
    if side not in ("yes", "no"):
        msg = f"side must be 'yes' or 'no', got {side!r}"
        raise ValueError(msg)
    return side  # type: ignore[no-any-return]


def _delta(header: Header, body: dict[str, Any]) -> Delta:
    price = _price_e4(body["price_dollars"]) if "price_dollars" in body else _cents_e4(body["price"])
    change = body["delta_fp"] if "delta_fp" in body else body["delta"]
    return Delta(header, _ticker(body), _side(body), price, _count_e2(change), _delta_time(body))


def _delta_time(body: dict[str, Any]) -> int | None:
    # Best source first: the RFC3339 ts has microseconds, ts_ms milliseconds (protocol §3.7).
    ts = body.get("ts")
    if isinstance(ts, str):
        ns = _utc_ns(ts)
        if ns is not None:
            return ns
    return _ms_or_s(body)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_UNSEEN = -(1 << 70)  # before any datetime
_SECONDS: dict[str, int | None] = {}
"""Epoch seconds of ``YYYY-MM-DDTHH:MM:SS`` prefixes seen in ``...Z`` times (None: not a time)."""


def _utc_ns(ts: str) -> int | None:
    """An RFC 3339 time as epoch ns (to the microsecond, as ``datetime`` reads it), or None if it is not one.

    Kalshi writes ``2026-08-27T11:00:00.123456Z`` on every delta: the whole-seconds prefix repeats for
    a second's worth of deltas, so it is read once and the fraction added; any other form goes through
    ``datetime.fromisoformat``.
    """
    if len(ts) > 20 and ts[19] == "." and ts[-1] == "Z" and (frac := ts[20:-1]).isascii() and frac.isdigit():
        prefix = ts[:19]
        seconds = _SECONDS.get(prefix, _UNSEEN)
        if seconds == _UNSEEN:
            if len(_SECONDS) >= 4096:  # a long-running worker sees a new prefix every second
                _SECONDS.clear()
            ns = _iso_ns(prefix + "+00:00")
            seconds = _SECONDS[prefix] = None if ns is None else ns // 1_000_000_000
        if seconds is None:
            return None
        return seconds * 1_000_000_000 + int(frac[:6].ljust(6, "0")) * 1_000
    return _iso_ns(ts.replace("Z", "+00:00"))


def _iso_ns(text: str) -> int | None:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _ms_or_s(body: dict[str, Any]) -> int | None:
    if type(ms := body.get("ts_ms")) is int:
        return ms * 1_000_000
    if type(s := body.get("ts")) is int:
        return s * 1_000_000_000
    return None


def _trade(header: Header, body: dict[str, Any]) -> TradePrint:
    if "yes_price_dollars" in body:
        price = _price_e4(body["yes_price_dollars"])
    else:
        price = _cents_e4(body["yes_price"])
    count = _count_e2(body["count_fp"] if "count_fp" in body else body["count"])
    taker = body.get("taker_outcome_side") or body.get("taker_side") or body.get("taker_book_side")
    if taker not in ("yes", "no", "bid", "ask"):
        msg = f"taker side {taker!r} is not yes/no/bid/ask"
        raise ValueError(msg)
    trade_id = body.get("trade_id", "")
    if not isinstance(trade_id, str):
        msg = f"trade_id must be a string, got {trade_id!r}"
        raise ValueError(msg)
    return TradePrint(
        header, _ticker(body), trade_id, price, count, taker, _ms_or_s(body), body.get("is_block_trade") is True
    )


def _seconds(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    return value * 1_000_000_000 if type(value) is int else None


def _lifecycle(header: Header, body: dict[str, Any]) -> Lifecycle:
    event_type = body["event_type"]
    if not isinstance(event_type, str):
        msg = f"event_type must be a string, got {event_type!r}"
        raise ValueError(msg)
    settlement = body.get("settlement_value")
    settlement_e4 = None
    if settlement is not None:
        settlement_e4 = _cents_e4(settlement) if type(settlement) is int else _price_e4(settlement)
    when = _seconds(body, "settled_ts") or _seconds(body, "determination_ts")
    result = body.get("result") or ""
    return Lifecycle(
        header,
        _ticker(body),
        event_type,
        when,
        result if isinstance(result, str) else str(result),
        settlement_e4,
        _seconds(body, "open_ts"),
        _seconds(body, "close_ts"),
    )


_PARSERS: dict[str, Callable[[Header, dict[str, Any]], Message]] = {
    "orderbook_snapshot": _snapshot,
    "orderbook_delta": _delta,
    "trade": _trade,
    "market_lifecycle_v2": _lifecycle,
    "multivariate_market_lifecycle": _lifecycle,
}
