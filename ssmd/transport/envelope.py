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

The hot path never builds a header dict: :func:`header_block` writes the wire form
(``NATS/1.0\r\nName: value\r\n...\r\n``) in one go and :func:`decode` reads a delivered
block once, in one pass, into everything a ``ConsumerMessage`` needs.
"""

from __future__ import annotations

import base64
import re
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


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # nats-py's rule for header names
_NEWLINES = str.maketrans({"\r": " ", "\n": " "})


def header_block(key: bytes | None, value: bytes | None, timestamp: float | None,
                 headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None,
                 msg_id: str, stream: str | None = None) -> bytes:
    """The wire form of :func:`encode_headers` (plus ``Nats-Expected-Stream``), ready to publish.

    Raises ``ValueError`` for a Faust header name that cannot be a NATS header name.
    """
    key_line = "" if key is None else f"{KEY}: {_b64(key).decode()}\r\n"
    ts_line = "" if timestamp is None else f"{TS}: {float(timestamp)!r}\r\n"
    null_line = f"{NULL}: 1\r\n" if value is None else ""
    user = _user_lines(headers) if headers else ""
    stream_line = "" if stream is None else f"{EXPECTED_STREAM}: {stream}\r\n"
    return (f"NATS/1.0\r\n{key_line}{ts_line}{null_line}{user}{MSG_ID}: {_clean(msg_id)}\r\n"
            f"{stream_line}\r\n").encode()


def _user_lines(headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes]) -> str:
    out = ""
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, hv in items:
        _check_name(name)
        raw = hv if isinstance(hv, bytes | bytearray) else str(hv).encode()
        out += f"{HEADER_PREFIX}{name}: {_b64(raw).decode()}\r\n"
    return out


def _check_name(name: str) -> None:
    if not _HEADER_NAME.fullmatch(name):
        msg = f"header name {name!r} cannot be a NATS header name"
        raise ValueError(msg)


def _clean(value: str) -> str:
    return value.translate(_NEWLINES).strip() if "\r" in value or "\n" in value else value


def block_of(headers: Mapping[str, str] | None) -> bytes | None:
    """A header dict in wire form (names and values as nats-py would write them)."""
    if not headers:
        return None
    out = "NATS/1.0\r\n"
    for name, v in headers.items():
        name = name.strip()
        _check_name(name)
        out += f"{name}: {_clean(v)}\r\n"
    return (out + "\r\n").encode()


_FAUST = b"Faust-"
_KEY_B = KEY.encode()
_TS_B = TS.encode()
_NULL_B = NULL.encode()
_PREFIX_B = HEADER_PREFIX.encode()


def decode(block: bytes | None, payload: bytes, stored_ns: int
           ) -> tuple[bool, bytes | None, bytes | None, float, list[tuple[str, bytes]]]:
    """``(has key, key, value, timestamp, Faust headers)`` of a delivered record, in one pass."""
    if not block:
        return False, None, payload, stored_ns / 1e9, []
    has_key = False
    key: bytes | None = None
    ts: float | None = None
    value: bytes | None = payload
    user: list[tuple[str, bytes]] = []
    for line in block.split(b"\r\n"):
        if not line.startswith(_FAUST):
            continue  # the NATS/1.0 line, Nats-* headers, the blank end
        name, _, raw = line.partition(b":")
        raw = raw.strip()
        if name == _KEY_B:
            has_key, key = True, _unb64(raw)
        elif name == _TS_B:
            try:
                ts = float(raw)
            except ValueError:
                pass
        elif name == _NULL_B:
            if raw == b"1":
                value = None
        elif name.startswith(_PREFIX_B):
            user.append((name[len(_PREFIX_B):].decode(), _unb64(raw)))
    return has_key, key, value, (stored_ns / 1e9 if ts is None else ts), user


def status_of(block: bytes | None) -> tuple[str, str]:
    """``(status code, description)`` of an inline-status header block; ``("", "")`` if none."""
    if not block or not block.startswith(b"NATS/1.0 "):
        return "", ""
    line = block[9:block.find(b"\r\n")] if b"\r\n" in block else block[9:]
    code, _, desc = line.decode(errors="replace").strip().partition(" ")
    return code, desc.strip()
