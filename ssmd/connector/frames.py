"""Cheap facts about a raw Kalshi frame, for routing it without decoding it (the hot path).

:func:`ticker_of` answers which market a frame is about, so that a frame can go to its ticker's
partition. It scans for the first ``"market_ticker":"`` (data and lifecycle messages) or, failing that,
``"event_ticker":"`` (event lifecycle and fee messages), and falls back to a full JSON decode only when the
value holds an escape. Control frames (``subscribed``, ``ok``, ``error``...) name no single market: None.
"""

from __future__ import annotations

import msgspec

_MARKET = b'"market_ticker":"'
_EVENT = b'"event_ticker":"'


def ticker_of(raw: bytes) -> str | None:
    """The market (or, for event messages, event) ticker a frame is about, or None."""
    key = _MARKET
    i = raw.find(key)
    if i < 0:
        key = _EVENT
        i = raw.find(key)
        if i < 0:
            return None
    start = i + len(key)
    end = raw.find(b'"', start)
    if end < 0:
        return None
    value = raw[start:end]
    if b"\\" in value:
        return _slow(raw, key)
    return value.decode("utf-8", "replace")


def _slow(raw: bytes, key: bytes) -> str | None:
    try:
        frame = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    msg = frame.get("msg") if isinstance(frame, dict) else None
    value = msg.get(key.decode()[1:-3]) if isinstance(msg, dict) else None
    return value if isinstance(value, str) else None
