"""Where every field of the ssmd structs sits in a Cap'n Proto message, for the hand-written codec.

A Cap'n Proto struct is a data section (scalars at fixed byte offsets, bools as bits) followed by
a pointer section (one 64-bit word per Text, Data or List field). The constants below spell the
data sections of ``schemas/ssmd.capnp`` as :mod:`struct` formats, with the field names in the order
the fast encoder packs them. Fields never move (the schema only appends), but a new field would be
silently dropped by a fast path that does not know it: :func:`verify` derives every layout from
the loaded schema and refuses to run when one differs from these constants.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple


class Layout(NamedTuple):
    """One struct: its data section as a little-endian struct format (``scalars`` names the packed
    values in order; a bools byte is named ``"a|b"``, bit 0 first) and its pointer fields in order."""

    fmt: str
    scalars: tuple[str, ...]
    pointers: tuple[str, ...]

    @property
    def data_words(self) -> int:
        return struct.calcsize(self.fmt) // 8


TRADE = Layout(
    "<QdIHBxqqqQQQQ",
    ("timestamp", "price", "size", "side", "flagged|blockTrade", "yesPriceE4", "noPriceE4", "countE2",
     "receivedNs", "sid", "seq", "connectionId"),
    ("ticker", "tradeId"),
)
BOOK = Layout(
    "<QHB5xQQQQ",
    ("timestamp", "kind", "flagged", "receivedNs", "sid", "seq", "connectionId"),
    ("ticker", "bids", "asks"),
)
LEVEL = Layout("<dI4xqq", ("price", "size", "priceE4", "sizeE2"), ())
STATUS = Layout(
    "<QH6xQQQQqQQ",
    ("timestamp", "status", "receivedNs", "sid", "seq", "connectionId", "settlementValueE4", "openNs",
     "closeNs"),
    ("ticker", "eventType", "result"),
)
GAP = Layout(
    "<H6xQQQQQQQQ",
    ("kind", "startNs", "endNs", "receivedNs", "connectionId", "sid", "expectedSeq", "receivedSeq", "missing"),
    ("ticker", "stream"),
)
RAW = Layout("<QQQQQ", ("receivedNs", "connectionId", "sid", "seq", "frameNo"), ("channel", "data", "ticker"))
RECORD = Layout("<H6x", ("which",), ("member",))
BATCH = Layout("<", (), ("records",))

LAYOUTS: dict[str, Layout] = {
    "Trade": TRADE, "OrderBookUpdate": BOOK, "Level": LEVEL, "MarketStatus": STATUS, "Gap": GAP,
    "RawFrame": RAW,
}
# Record's union members, by discriminant (the union's field order in the schema).
UNION_MEMBERS = ("trade", "orderBook", "status", "gap", "raw")

# The only scalar default that is not zero: stored XOR default, so "none" (-1) is stored as 0.
SETTLEMENT_DEFAULT = -1

_CODES = {
    "uint64": "Q", "int64": "q", "float64": "d", "uint32": "I", "int32": "i", "float32": "f", "uint16": "H",
    "int16": "h", "enum": "H", "uint8": "B", "int8": "b",
}
_SIZES = {"Q": 8, "q": 8, "d": 8, "I": 4, "i": 4, "f": 4, "H": 2, "h": 2, "B": 1, "b": 1}
_POINTER_TYPES = ("text", "data", "list", "struct")


def derive(struct_schema: Any) -> Layout:
    """The layout of a pycapnp struct schema, computed from the compiled field offsets."""
    node = struct_schema.node.struct
    slots: dict[int, tuple[str, str]] = {}  # byte offset -> (code, name)
    bools: dict[int, list[tuple[int, str]]] = {}
    pointers: dict[int, str] = {}
    for field in node.fields:
        kind, offset = str(field.slot.type.which()), field.slot.offset
        if kind in _POINTER_TYPES:
            pointers[offset] = field.name
        elif kind == "bool":
            bools.setdefault(offset // 8, []).append((offset % 8, field.name))
        elif kind in _CODES:
            code = _CODES[kind]
            slots[offset * _SIZES[code]] = (code, field.name)
        else:
            msg = f"{struct_schema.node.displayName}.{field.name} has a type the fast codec lacks: {kind}"
            raise RuntimeError(msg)
    for byte, bits in bools.items():
        if [bit for bit, _ in sorted(bits)] != list(range(len(bits))):
            msg = f"bools of {struct_schema.node.displayName} are not packed from bit 0"
            raise RuntimeError(msg)
        slots[byte] = ("B", "|".join(name for _, name in sorted(bits)))
    fmt, names, at = "<", [], 0
    for byte in sorted(slots):
        code, name = slots[byte]
        fmt += _pad(byte - at) + code
        names.append(name)
        at = byte + _SIZES.get(code, 1)
    fmt += _pad(node.dataWordCount * 8 - at)
    return Layout(fmt, tuple(names), tuple(pointers[i] for i in range(node.pointerCount)))


def _pad(n: int) -> str:
    return "" if n <= 0 else ("x" if n == 1 else f"{n}x")


def verify(module: Any) -> None:
    """Check every layout constant against the loaded schema ``module``; RuntimeError if one differs."""
    for name, expected in LAYOUTS.items():
        actual = derive(getattr(module, name).schema)
        if actual != expected:
            msg = f"fast codec layout of {name} is {expected}, the schema says {actual}"
            raise RuntimeError(msg)
    record = module.Record.schema.node.struct
    members = tuple(field.name for field in sorted(record.fields, key=lambda f: f.discriminantValue))
    if (record.dataWordCount, record.pointerCount, record.discriminantOffset, members) != (1, 1, 0, UNION_MEMBERS):
        msg = f"fast codec does not know this Record layout: {members}"
        raise RuntimeError(msg)
    settlement = module.MarketStatus.schema.fields["settlementValueE4"].proto.slot.defaultValue.int64
    if settlement != SETTLEMENT_DEFAULT:
        msg = f"settlementValueE4 default is {settlement}, the fast codec assumes {SETTLEMENT_DEFAULT}"
        raise RuntimeError(msg)
