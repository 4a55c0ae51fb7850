"""Marker frames: what the capture side detected, carried on the raw stream beside the exchange frames.

A marker is a :class:`~ssmd.records.RawFrame` whose ``channel`` starts with ``ssmd.`` and whose ``data``
is a small JSON object; it is never mistaken for an exchange frame (Kalshi's types have no dot), it is
archived with the raw frames (a reader sees the capture's own account of its holes), and the normalizer
turns it into gap records:

- ``ssmd.gap``: an exchange sequence gap on ``(connection_id, sid)``: ``{"sid", "expected", "received",
  "tickers"}``, plus ``"kind": "seq_reset"`` when the exchange ended the sid (error 10 or 25: its markets
  restart on a new sid; ``expected``/``received`` are then the last seq seen and the error's seq).
  ``tickers`` holds only the markets of the partition the marker is sent to.
- ``ssmd.disconnect``: the connection closed: ``{"reason", "tickers"}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ssmd.errors import DecodeError
from ssmd.records import GapKind, RawFrame

GAP = "ssmd.gap"
DISCONNECT = "ssmd.disconnect"
BUS_GAP = "ssmd.bus_gap"
"""Not on the stream: the normalizer's own name for a hole the consumer found in it (``Normalizer.bus_gap``)."""
PREFIX = "ssmd."


@dataclass(frozen=True, slots=True)
class Marker:
    channel: str
    connection_id: int | None
    received_ns: int
    sid: int | None
    expected: int | None
    received: int | None
    tickers: tuple[str, ...]
    reason: str = ""
    kind: GapKind = "exchange_seq"


def gap_frame(received_ns: int, connection_id: int, sid: int, expected: int, received: int,
              tickers: list[str], kind: GapKind = "exchange_seq") -> RawFrame:  # fmt: skip
    body: dict[str, Any] = {"sid": sid, "expected": expected, "received": received, "tickers": sorted(tickers)}
    if kind != "exchange_seq":
        body["kind"] = kind
    return RawFrame(received_ns, GAP, _dumps(body), connection_id, sid, None, "")


def disconnect_frame(received_ns: int, connection_id: int, reason: str, tickers: list[str]) -> RawFrame:
    body = {"reason": reason, "tickers": sorted(tickers)}
    return RawFrame(received_ns, DISCONNECT, _dumps(body), connection_id, None, None, "")


def is_marker(frame: RawFrame) -> bool:
    return frame.channel.startswith(PREFIX)


def parse_marker(frame: RawFrame) -> Marker:
    """The marker a frame carries; :class:`DecodeError` if it is malformed or of an unknown kind."""
    if frame.channel not in (GAP, DISCONNECT):
        msg = f"unknown marker channel {frame.channel!r}"
        raise DecodeError(msg)
    try:
        body: dict[str, Any] = json.loads(frame.data)
        tickers = tuple(str(t) for t in body["tickers"])
        if frame.channel == GAP:
            kind = body.get("kind", "exchange_seq")
            if kind not in ("exchange_seq", "seq_reset"):
                msg = f"unknown gap kind {kind!r}"
                raise ValueError(msg)
            return Marker(GAP, frame.connection_id, frame.received_ns, int(body["sid"]), int(body["expected"]),
                          int(body["received"]), tickers, kind=kind)  # fmt: skip
        return Marker(DISCONNECT, frame.connection_id, frame.received_ns, None, None, None, tickers,
                      str(body.get("reason", "")))  # fmt: skip
    except (ValueError, KeyError, TypeError) as e:
        msg = f"malformed {frame.channel} marker: {e}"
        raise DecodeError(msg) from None


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
