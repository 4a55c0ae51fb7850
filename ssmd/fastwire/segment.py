"""Reading one canonical single-segment Cap'n Proto message: the pieces the fast reader is made of.

Positions are byte offsets into the message (the segment starts at byte 8, after its one-entry
segment table). Every function here either returns what a well-formed canonical message holds
or raises :class:`NotFast`; none trusts a pointer: each object must lie inside the segment and
at or after ``cursor``, the end of the objects read so far, so nothing is read twice.
"""

from __future__ import annotations

import struct
from decimal import Decimal

from ssmd.fastwire import layout
from ssmd.records import Level, e2_to_size, e4_to_price, unchecked_constructor

SEGMENT = 8  # the segment starts after a one-segment table (count - 1 and size: two u32)
STRUCT_POINTER = struct.Struct("<iHH")
LIST_POINTER = struct.Struct("<iI")
LEVEL = struct.Struct(layout.LEVEL.fmt)
NO_LEVELS = struct.pack("<Q", 4 << 32)  # the tag of an empty list of Levels (4 data words each)
PRICES = tuple(e4_to_price(i) for i in range(10_001))
_CACHE_LIMIT = 1 << 14
SIZES: dict[int, Decimal] = {}
LEVELS: dict[tuple[float, int, int, int], Level] = {}
_new_level = unchecked_constructor(Level)


class NotFast(Exception):
    """The message is not in the shape this reader handles; the reference decoder must read it."""


def size_of(fixed: int) -> Decimal:
    size = SIZES.get(fixed)
    if size is None:
        size = e2_to_size(fixed)  # RecordError if negative
        if len(SIZES) >= _CACHE_LIMIT:
            SIZES.clear()
        SIZES[fixed] = size
    return size


def price_of(fixed: int) -> Decimal:
    if not 0 <= fixed <= 10_000:
        raise NotFast
    return PRICES[fixed]


def locate(lo: int, pointer: int, cursor: int, words: int, end: int) -> int:
    """Byte position of an object of ``words`` words that the pointer at ``pointer`` (low half ``lo``)
    points at, which must lie between ``cursor`` and ``end``."""
    start = pointer + 8 + (lo >> 2) * 8
    if start < cursor or start + words * 8 > end:
        raise NotFast
    return start


# read_text and read_data are inlined by hand in the RawFrame loop of Reader._batch: keep the three alike.
def read_text(buf: bytes, pointer: int, lo: int, hi: int, cursor: int) -> tuple[str, int]:
    """The Text a pointer (at byte ``pointer``, halves ``lo``, ``hi``) points to, at or after
    ``cursor``, and the position after it."""
    if not (lo or hi):
        return "", cursor
    start = pointer + 8 + (lo >> 2) * 8
    end = start + (hi >> 3)
    if lo & 3 != 1 or hi & 7 != 2 or start < cursor or end > len(buf) or end == start or buf[end - 1]:
        raise NotFast  # not a byte list in bounds after the cursor, or no terminating NUL
    return buf[start:end - 1].decode(), (end + 7) & -8


def read_data(buf: bytes, pointer: int, lo: int, hi: int, cursor: int) -> tuple[bytes, int]:
    """As :func:`read_text`, for a Data field."""
    if not (lo or hi):
        return b"", cursor
    start = pointer + 8 + (lo >> 2) * 8
    end = start + (hi >> 3)
    if lo & 3 != 1 or hi & 7 != 2 or start < cursor or end > len(buf):
        raise NotFast
    return buf[start:end], (end + 7) & -8


def make_level(values: tuple[float, int, int, int]) -> Level:
    price_f, size_u, price, size = values
    if not price and not size and (price_f or size_u):
        raise NotFast  # a seed-era level: the reference converts its approximate fields
    level: Level = _new_level(price_of(price), size_of(size))
    if len(LEVELS) >= _CACHE_LIMIT:
        LEVELS.clear()
    LEVELS[values] = level
    return level


def read_levels(buf: bytes, pointer: int, lo: int, hi: int, cursor: int) -> tuple[tuple[Level, ...], int]:
    if not (lo or hi):
        return (), cursor
    tag = pointer + 8 + (lo >> 2) * 8
    if lo & 3 != 1 or hi & 7 != 7 or tag < cursor:
        raise NotFast
    tag_lo, tag_dw, tag_pc = STRUCT_POINTER.unpack_from(buf, tag)
    n = tag_lo >> 2
    end = tag + 8 + 32 * n
    if tag_lo & 3 or tag_dw != 4 or tag_pc or 4 * n != hi >> 3 or end > len(buf):
        raise NotFast
    if n == 1:
        values = LEVEL.unpack_from(buf, tag + 8)
        return (LEVELS.get(values) or make_level(values),), end
    # Books repeat the same levels all day: the cache skips validating and building them again.
    get = LEVELS.get
    return tuple([get(values) or make_level(values) for values in LEVEL.iter_unpack(memoryview(buf)[tag + 8:end])]), end


def elements_of(data: bytes) -> tuple[bytes, int, int]:
    """The segment of a ``Batch`` message and the byte range of its Record elements; NotFast unless a
    canonical single-segment Batch."""
    buf, at, dw, pc = root(data)
    if dw != 0 or pc != 1:
        raise NotFast
    lo, hi = LIST_POINTER.unpack_from(buf, at)
    if lo & 3 != 1 or hi & 7 != 7:
        raise NotFast
    tag = locate(lo, at, at + 8, 1 + (hi >> 3), len(buf))
    tag_lo, tag_dw, tag_pc = STRUCT_POINTER.unpack_from(buf, tag)
    n = tag_lo >> 2
    if tag_lo & 3 or tag_dw != 1 or tag_pc != 1 or 2 * n != hi >> 3:
        raise NotFast
    return buf, tag + 8, tag + 8 + 16 * n



def root(data: bytes) -> tuple[bytes, int, int, int]:
    """The segment (trimmed to its end) and the root struct's position and section sizes."""
    if type(data) is not bytes:
        data = bytes(data)
    count_minus_one, words = struct.unpack_from("<II", data)
    end = SEGMENT + 8 * words
    if count_minus_one or len(data) < end:
        raise NotFast
    buf = data if len(data) == end else data[:end]
    lo, dw, pc = STRUCT_POINTER.unpack_from(buf, SEGMENT)
    if lo & 3 or not (lo or dw or pc):
        raise NotFast
    return buf, locate(lo, SEGMENT, SEGMENT + 8, dw + pc, end), dw, pc
