"""How a Faust record travels as a NATS message: payload = value, metadata in headers.

* ``Faust-Key``: the key, base64; absent means ``None`` (a keyless record).
* ``Faust-Ts``: the event timestamp, float seconds; windows are computed from it. A message
  without it gets the stream's store time.
* ``Faust-Null``: ``1`` when the value is ``None`` (a table tombstone); the payload is empty.
* ``Faust-H-<name>``: one Faust header, value base64 (Faust headers are bytes).
* ``Nats-Msg-Id``: the deduplication id (see :mod:`ssmd.transport.producer`).
* ``Nats-Expected-Stream``: the topic's stream; the server refuses a message whose subject
  another stream captures.

Records from non-Faust publishers on a public subject have no ``Faust-Key``; the key is then the
decoded key token of the subject's last token.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence

KEY = "Faust-Key"
TS = "Faust-Ts"
NULL = "Faust-Null"
HEADER_PREFIX = "Faust-H-"
MSG_ID = "Nats-Msg-Id"
EXPECTED_STREAM = "Nats-Expected-Stream"

_b64 = base64.b64encode
_unb64 = base64.b64decode


def encode_headers(key: bytes | None, value: bytes | None, timestamp: float | None,
                   headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None,
                   msg_id: str | None) -> dict[str, str]:
    """NATS headers for one record."""
    out: dict[str, str] = {}
    if key is not None:
        out[KEY] = _b64(key).decode()
    if timestamp is not None:
        out[TS] = repr(float(timestamp))
    if value is None:
        out[NULL] = "1"
    if headers:
        items = headers.items() if isinstance(headers, Mapping) else headers
        for name, hv in items:
            raw = hv if isinstance(hv, bytes | bytearray) else str(hv).encode()
            out[HEADER_PREFIX + name] = _b64(raw).decode()
    if msg_id is not None:
        out[MSG_ID] = msg_id
    return out


def decode_key(headers: Mapping[str, str] | None) -> bytes | None:
    raw = headers.get(KEY) if headers else None
    return None if raw is None else _unb64(raw)


def decode_value(headers: Mapping[str, str] | None, payload: bytes) -> bytes | None:
    return None if headers and headers.get(NULL) == "1" else payload


def decode_timestamp(headers: Mapping[str, str] | None, stored_ns: int) -> float:
    raw = headers.get(TS) if headers else None
    if raw is not None:
        try:
            return float(raw)
        except ValueError:
            pass
    return stored_ns / 1e9


def decode_user_headers(headers: Mapping[str, str] | None) -> list[tuple[str, bytes]]:
    if not headers:
        return []
    n = len(HEADER_PREFIX)
    return [(k[n:], _unb64(v)) for k, v in headers.items() if k.startswith(HEADER_PREFIX)]
