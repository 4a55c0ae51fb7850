"""Cheap facts about a raw Kalshi frame, for routing it without decoding it (the hot path).

:func:`sid_of` reads the subscription id (the first ``"sid":``, which for a ``subscribed`` reply is the
new sid in ``msg``). :func:`ticker_of` answers which market a frame is about, so that a frame can go to its ticker's
partition. It scans for the first ``"market_ticker":"`` (data and lifecycle messages) or, failing that,
``"event_ticker":"`` (event lifecycle and fee messages), and falls back to a full JSON decode only when the
value holds an escape. Control frames (``subscribed``, ``ok``, ``error``...) name no single market: None.
"""

from __future__ import annotations

import msgspec

_MARKET = b'"market_ticker":"'
_SID = b'"sid":'
_EVENT = b'"event_ticker":"'


def ticker_of(raw: bytes) -> str | None:
    """The market (or, for event messages, event) ticker a frame is about, or None."""
    i = raw.find(_MARKET)
    if i >= 0:
        start, key = i + len(_MARKET), _MARKET
    else:
        i = raw.find(_EVENT)
        if i < 0:
            return None
        start, key = i + len(_EVENT), _EVENT
    end = raw.find(b'"', start)
    if end < 0:
        return None
    if raw.find(b"\\", start, end) >= 0:
        return _slow(raw, key)
    return raw[start:end].decode("utf-8", "replace")


def sid_of(raw: bytes) -> int | None:
    """The frame's subscription id, or None (e.g. a command error, which names no sid)."""
    i = raw.find(_SID)
    if i < 0:
        return None
    start = end = i + len(_SID)
    n = len(raw)
    while end < n and 0x30 <= raw[end] <= 0x39:
        end += 1
    return int(raw[start:end]) if end > start else None


def _slow(raw: bytes, key: bytes) -> str | None:
    try:
        frame = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    msg = frame.get("msg") if isinstance(frame, dict) else None
    value = msg.get(key.decode()[1:-3]) if isinstance(msg, dict) else None
    return value if isinstance(value, str) else None
