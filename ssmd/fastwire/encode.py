"""Hand-written Cap'n Proto writer for ssmd records: ``Batch`` and ``Record`` messages from records.

The output is a standard single-segment unpacked message, laid out exactly as pycapnp lays out the
same message when it fits pycapnp's first segment (8 KiB): objects in the order the reference
writer (:mod:`ssmd._wire`) allocates them, i.e. each member struct followed by its texts and lists
in pointer order. Larger messages differ from pycapnp's only in being one segment instead of
several, which every Cap'n Proto reader (and the ``capnp`` tool) reads the same.

Each struct is one :func:`struct.pack` of its data and pointer sections (layouts in
:mod:`ssmd.fastwire.layout`), followed by its texts as byte chunks, and the message is one
``b"".join``. Values are the records' own, already validated on construction; the writer does not
validate them again. A record the writer cannot encode (not a record type, a value that does not fit
its field) raises an exception and the caller falls back to the reference writer, which raises the
precise error.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from ssmd.fastwire import layout
from ssmd.records import (
    AnyRecord,
    Gap,
    Level,
    MarketStatus,
    OrderBookUpdate,
    RawFrame,
    Trade,
    price_to_e4,
    size_to_e2,
)

_U32_MAX = (1 << 32) - 1
_MAX_WORDS = 1 << 29  # a pointer's 30-bit signed word offset must reach every object
_ZEROS = tuple(b"\0" * n for n in range(9))
_TEXT = 2 << 32  # list pointer high half: element size 2 (bytes); count goes in bits 35..63
_CACHE_LIMIT = 1 << 14

_PACK_TRADE = struct.Struct(layout.TRADE.fmt + "QQ").pack
_PACK_BOOK = struct.Struct(layout.BOOK.fmt + "QQQ").pack
_PACK_STATUS = struct.Struct(layout.STATUS.fmt + "QQQ").pack
_PACK_GAP = struct.Struct(layout.GAP.fmt + "QQ").pack
_PACK_RAW = struct.Struct(layout.RAW.fmt + "QQQ").pack
_PACK_LEVEL = struct.Struct(layout.LEVEL.fmt).pack
_PACK_TAG = struct.Struct("<Q").pack
_LEVEL_TAGS = tuple(_PACK_TAG(n << 2 | 4 << 32) for n in range(64))  # a composite list tag: n Levels
_PACK_RECORD = struct.Struct("<IIQQQ").pack  # segment table, root pointer, Record data word and pointer
_PACK_ROOT = struct.Struct("<IIQ").pack  # segment table and root pointer

# Each member struct pointer's high half: data words | pointer count << 16.
_HI = {name: (lay.data_words | len(lay.pointers) << 16) << 32 for name, lay in layout.LAYOUTS.items()}
_RAW_HI = _HI["RawFrame"]
_E4: dict[Decimal, int] = {}
_E2: dict[Decimal, int] = {}
_LEVELS: dict[tuple[Decimal, Decimal], bytes] = {}

Write = Callable[[Any, int, list[bytes]], int]


def _e4(price: Decimal) -> int:
    # Records hold validated Decimals; the cache skips re-validating the few prices a day repeats.
    fixed = _E4.get(price)
    if fixed is None:
        fixed = price_to_e4(price)
        if len(_E4) >= _CACHE_LIMIT:
            _E4.clear()
        _E4[price] = fixed
    return fixed


def _e2(size: Decimal) -> int:
    fixed = _E2.get(size)
    if fixed is None:
        fixed = size_to_e2(size)
        if len(_E2) >= _CACHE_LIMIT:
            _E2.clear()
        _E2[size] = fixed
    return fixed


_TEXTS: dict[str, tuple[bytes, int, int]] = {}


def _text(value: str) -> tuple[bytes, int, int]:
    """A text's bytes with its NUL and padding, the low bits of its pointer but the offset, and its words.

    An empty text is ``(b"", 0, 0)``: a null pointer, as the reference writer leaves it.
    """
    raw = value.encode()
    n = len(raw)
    piece = (raw + _ZEROS[8 - (n & 7)], 1 | _TEXT | (n + 1) << 35, (n + 8) >> 3) if n else (b"", 0, 0)
    if len(_TEXTS) >= _CACHE_LIMIT:
        _TEXTS.clear()
    _TEXTS[value] = piece
    return piece


def _texts(values: tuple[str, ...], pointer: int, tail: int, out: list[bytes]) -> tuple[list[int], int]:
    """Pointers for texts laid out from word ``tail``, the first pointer being at word ``pointer``."""
    words = []
    for i, value in enumerate(values):
        piece, low, size = _TEXTS.get(value) or _text(value)
        if not low:
            words.append(0)  # an empty text stays null, as the reference writer leaves it
            continue
        words.append((tail - pointer - i - 1) << 2 | low)
        out.append(piece)
        tail += size
    return words, tail


def _data(value: bytes, pointer: int, tail: int, out: list[bytes]) -> tuple[int, int]:
    if not (n := len(value)):
        return 0, tail
    out.append(value)
    out.append(_ZEROS[-n & 7])
    return (tail - pointer - 1) << 2 | 1 | _TEXT | n << 35, tail + ((n + 7) >> 3)


def _levels(levels: Sequence[Level], pointer: int, tail: int, out: list[bytes]) -> tuple[int, int]:
    """A list of levels at word ``tail`` and the pointer to it from word ``pointer``."""
    # A composite list even when empty (a tag word and no elements), as the reference writer does.
    n = len(levels)
    out.append(_LEVEL_TAGS[n] if n < len(_LEVEL_TAGS) else _PACK_TAG(n << 2 | 4 << 32))
    get = _LEVELS.get
    for level in levels:
        key = (level.price, level.size)
        out.append(get(key) or _level(key))
    return (tail - pointer - 1) << 2 | 1 | (7 | 4 * n << 3) << 32, tail + 1 + 4 * n


def _level(key: tuple[Decimal, Decimal]) -> bytes:
    # Books repeat the same levels all day: the cache skips converting and packing them again.
    price, size = _e4(key[0]), _e2(key[1])
    packed = _PACK_LEVEL(price / 10_000, min(size // 100, _U32_MAX), price, size)
    if len(_LEVELS) >= _CACHE_LIMIT:
        _LEVELS.clear()
    _LEVELS[key] = packed
    return packed


class Writer:
    """Encodes records into messages; enum codes come from the schema (see :class:`ssmd._wire.EnumMap`)."""

    def __init__(self, sides: dict[str, int], book_kinds: dict[str, int], statuses: dict[str, int],
                 gap_kinds: dict[str, int]) -> None:
        self._sides, self._book_kinds, self._statuses, self._gap_kinds = sides, book_kinds, statuses, gap_kinds
        self._members: dict[type[Any], tuple[int, int, Write]] = {
            Trade: (0, _HI["Trade"], self._trade),
            OrderBookUpdate: (1, _HI["OrderBookUpdate"], self._book),
            MarketStatus: (2, _HI["MarketStatus"], self._status),
            Gap: (3, _HI["Gap"], self._gap),
            RawFrame: (4, _HI["RawFrame"], self._raw),
        }

    def batch(self, records: Sequence[AnyRecord]) -> bytes:
        """A ``Batch`` message of ``records``; KeyError for a value that is not a record."""
        n = len(records)
        out = [b""]
        append = out.append
        pointers = [0] * (2 * n)
        members, pack_raw, zeros, texts = self._members, _PACK_RAW, _ZEROS, _TEXTS
        at = 3 + 2 * n  # root pointer, Batch struct, list tag, then two words per Record element
        for i, r in enumerate(records):
            if type(r) is not RawFrame:
                which, hi, write = members[type(r)]
                pointers[2 * i] = which
                pointers[2 * i + 1] = (at - 5 - 2 * i) << 2 | hi
                at = write(r, at, out)
                continue
            # A RawFrame (every record of the raw stream), written inline: _raw by hand. Channel and
            # ticker are a few texts repeated all day: their padded bytes come from a cache.
            pointers[2 * i] = 4
            pointers[2 * i + 1] = (at - 5 - 2 * i) << 2 | _RAW_HI
            channel = texts.get(r.channel) or _text(r.channel)
            ticker = texts.get(r.ticker) or _text(r.ticker)
            data = r.data
            nd = len(data)
            tail = at + 8
            p_channel = p_data = p_ticker = 0
            if channel[1]:
                p_channel = (tail - at - 6) << 2 | channel[1]
                tail += channel[2]
            if nd:
                p_data = (tail - at - 7) << 2 | 1 | _TEXT | nd << 35
                tail += (nd + 7) >> 3
            if ticker[1]:
                p_ticker = (tail - at - 8) << 2 | ticker[1]
                tail += ticker[2]
            append(pack_raw(r.received_ns, r.connection_id or 0, r.sid or 0, r.seq or 0, r.frame_no or 0,
                            p_channel, p_data, p_ticker))
            if channel[1]:
                append(channel[0])
            if nd:
                append(data)
                append(zeros[-nd & 7])
            if ticker[1]:
                append(ticker[0])
            at = tail
        out[0] = _batch_head(n, at, pointers)
        return b"".join(out)

    def batch_and_structs(self, records: Sequence[AnyRecord]) -> tuple[bytes, list[bytes]]:
        """:meth:`batch`, and each record as :meth:`struct` writes it, from one encoding: a member's
        struct and the objects after it are the same bytes in both messages (pointers are relative)."""
        n = len(records)
        out = [b""]
        pointers = [0] * (2 * n)
        structs = []
        members = self._members
        at = 3 + 2 * n
        for i, r in enumerate(records):
            which, hi, write = members[type(r)]
            pointers[2 * i] = which
            pointers[2 * i + 1] = (at - 5 - 2 * i) << 2 | hi
            first = len(out)
            end = write(r, at, out)
            structs.append(_PACK_ROOT(0, 1 + end - at, hi) + b"".join(out[first:]))
            at = end
        out[0] = _batch_head(n, at, pointers)
        return b"".join(out), structs

    def record(self, record: AnyRecord) -> bytes:
        """A ``Record`` message (the archive format) holding ``record``."""
        which, hi, write = self._members[type(record)]
        out = [b""]
        at = write(record, 3, out)
        _check_size(at)
        out[0] = _PACK_RECORD(0, at, 0x10001 << 32, which, hi)
        return b"".join(out)

    def struct(self, record: AnyRecord) -> bytes:
        """A message whose root is ``record``'s own struct (no ``Record`` envelope)."""
        _, hi, write = self._members[type(record)]
        out = [b""]
        at = write(record, 1, out)
        _check_size(at)
        out[0] = _PACK_ROOT(0, at, hi)
        return b"".join(out)

    def _raw(self, r: RawFrame, at: int, out: list[bytes]) -> int:
        head = len(out)
        out.append(b"")
        (p_channel,), tail = _texts((r.channel,), at + 5, at + 8, out)
        p_data, tail = _data(r.data, at + 6, tail, out)
        (p_ticker,), tail = _texts((r.ticker,), at + 7, tail, out)
        out[head] = _PACK_RAW(r.received_ns, r.connection_id or 0, r.sid or 0, r.seq or 0, r.frame_no or 0,
                              p_channel, p_data, p_ticker)
        return tail

    def _trade(self, r: Trade, at: int, out: list[bytes]) -> int:
        yes, count = _E4.get(r.yes_price) or _e4(r.yes_price), _E2.get(r.count) or _e2(r.count)
        ticker, trade_id = _TEXTS.get(r.ticker) or _text(r.ticker), r.trade_id.encode()
        ni = len(trade_id)
        tail = at + 12
        p_ticker = p_trade = 0
        if ticker[1]:
            p_ticker = (tail - at - 11) << 2 | ticker[1]
            tail += ticker[2]
        if ni:
            p_trade = (tail - at - 12) << 2 | 1 | _TEXT | (ni + 1) << 35
            tail += (ni + 8) >> 3
        out.append(_PACK_TRADE(
            r.exchange_ns or 0, yes / 10_000, min(count // 100, _U32_MAX), self._sides[r.taker_side],
            r.flagged | r.block_trade << 1, yes, 10_000 - yes, count, r.received_ns, r.sid or 0, r.seq or 0,
            r.connection_id or 0, p_ticker, p_trade))
        if ticker[1]:
            out.append(ticker[0])
        if ni:
            out += (trade_id, _ZEROS[8 - (ni & 7)])
        return tail

    def _book(self, r: OrderBookUpdate, at: int, out: list[bytes]) -> int:
        head = len(out)
        out.append(b"")
        ticker = _TEXTS.get(r.ticker) or _text(r.ticker)
        tail = at + 9
        p_ticker = 0
        if ticker[1]:  # the ticker text right after the struct, as _texts would place it
            p_ticker = 2 << 2 | ticker[1]
            out.append(ticker[0])
            tail += ticker[2]
        p_bids, tail = _levels(r.bids, at + 7, tail, out)
        p_asks, tail = _levels(r.asks, at + 8, tail, out)
        out[head] = _PACK_BOOK(r.exchange_ns or 0, self._book_kinds[r.kind], r.flagged, r.received_ns,
                               r.sid or 0, r.seq or 0, r.connection_id or 0, p_ticker, p_bids, p_asks)
        return tail

    def _status(self, r: MarketStatus, at: int, out: list[bytes]) -> int:
        head = len(out)
        out.append(b"")
        pointers, tail = _texts((r.ticker, r.event_type, r.result), at + 9, at + 12, out)
        settlement = layout.SETTLEMENT_DEFAULT if r.settlement_value is None else _e4(r.settlement_value)
        out[head] = _PACK_STATUS(
            r.exchange_ns or 0, self._statuses[r.status], r.received_ns, r.sid or 0, r.seq or 0,
            r.connection_id or 0, settlement ^ layout.SETTLEMENT_DEFAULT, r.open_ns or 0, r.close_ns or 0,
            *pointers)
        return tail

    def _gap(self, r: Gap, at: int, out: list[bytes]) -> int:
        head = len(out)
        out.append(b"")
        pointers, tail = _texts((r.ticker, r.stream), at + 9, at + 11, out)
        out[head] = _PACK_GAP(
            self._gap_kinds[r.kind], r.start_ns, r.end_ns or 0, r.received_ns, r.connection_id or 0, r.sid or 0,
            r.expected_seq or 0, r.received_seq or 0, r.missing, *pointers)
        return tail


def _batch_head(n: int, words: int, pointers: list[int]) -> bytes:
    """Segment table, root pointer, Batch struct, list tag and the n Record elements."""
    _check_size(words)
    return struct.pack(f"<IIQQQ{2 * n}Q", 0, words, 1 << 48, 1 | (7 | 2 * n << 3) << 32, n << 2 | 0x10001 << 32,
                       *pointers)


def _check_size(words: int) -> None:
    if words >= _MAX_WORDS:
        msg = f"message of {words} words is too large for one segment"
        raise OverflowError(msg)
