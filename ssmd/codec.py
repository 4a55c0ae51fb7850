"""Cap'n Proto codec for ssmd records: the only module that touches the wire format.

API (every result is a standard, unpacked Cap'n Proto message that the ``capnp`` tool reads):

- :func:`encode` / :func:`decode`: one record in a ``Record`` envelope (a union of every record
  type), so the bytes say what they hold. Archive files are a stream of these messages
  (:func:`decode_stream` reads one), readable with ``capnp decode schemas/ssmd.capnp Record``.
- :func:`encode_batch` / :func:`decode_batch`: a ``Batch`` (a list of ``Record``), the payload of
  one event on an internal batched stream; :func:`split_batch` turns one into ``Record`` messages
  without decoding the records (for archivers).
- :func:`encode_struct` / :func:`decode_struct`: one record with its own struct as the root
  (``capnp decode schemas/ssmd.capnp Trade``), for subjects that name the type, as the seed did;
  :func:`encode_batch_and_structs` gives a batch and its records' struct messages in one go.

Two implementations stand behind every function here: a hand-written one (:mod:`ssmd.fastwire`,
1.3-9x faster than pycapnp in ``bench/bench_codec.py``, used whenever it applies) and pycapnp, the
reference, which the ``reference_*`` functions call directly. The fast writer produces the bytes
pycapnp produces (one segment where pycapnp would use several for messages over 8 KiB); the fast
reader reads the canonical single-segment messages both writers produce and hands anything else
(other writers' layouts, multi-segment or malformed messages) to pycapnp, so results and errors
are pycapnp's.

Every decoder raises :class:`ssmd.errors.DecodeError` for bytes that are not a valid message of the
expected shape (truncated, garbage, values a record cannot hold); it never aborts, and what it
returns is always a valid record. (Cap'n Proto has no checksum: a flipped bit inside a number
decodes as another number. Integrity of stored data is the job of manifests and object stores.)
Decoding work is bounded by a small multiple of the message's size, whatever its pointers claim.

The schema (package data ``ssmd/schemas/ssmd.capnp``) is loaded lazily, once per process, on the
first encode or decode, after :func:`ssmd.schema_check.ensure_valid` has compiled it in a child
process: pycapnp aborts the process on a schema error, so an in-process load only ever sees a
schema that compiled. Field handles are looked up once and reused, because pycapnp's per-name
attribute access costs several times more than access by field object.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import capnp

from ssmd import _wire
from ssmd.errors import DecodeError
from ssmd.fastwire import layout
from ssmd.fastwire import split as fastsplit
from ssmd.fastwire.decode import Reader
from ssmd.fastwire.encode import Writer
from ssmd.records import AnyRecord, Gap, MarketStatus, OrderBookUpdate, RawFrame, Trade
from ssmd.schema_check import ensure_valid

SCHEMA_PATH = Path(__file__).parent / "schemas" / "ssmd.capnp"

R = TypeVar("R", bound=AnyRecord)

_STRUCT_NAMES: dict[type[Any], str] = {
    Trade: "Trade",
    OrderBookUpdate: "OrderBookUpdate",
    MarketStatus: "MarketStatus",
    Gap: "Gap",
    RawFrame: "RawFrame",
}


@functools.cache
def schema() -> Any:
    """The loaded schema module (``schema().Trade`` ...), loaded once after a safe compile check."""
    ensure_valid(SCHEMA_PATH)
    return capnp.load(str(SCHEMA_PATH))


@functools.cache
def _wire_tables() -> _wire.Tables:
    return _wire.Tables(schema())


class _Fast(NamedTuple):
    writer: Writer
    reader: Reader


@functools.cache
def _fast() -> _Fast:
    # The fast codec's layouts are constants; refuse to run them against a schema they do not match.
    tables = _wire_tables()
    layout.verify(schema())
    maps = (tables.sides, tables.book_kinds, tables.statuses, tables.gap_kinds)
    return _Fast(Writer(*(m.codes for m in maps)), Reader(*(m.names for m in maps)))


def encode(record: AnyRecord) -> bytes:
    """One record in a self-describing ``Record`` envelope."""
    try:
        return _fast().writer.record(record)
    except Exception:  # the reference writer raises the precise error (e.g. TypeError)
        return reference_encode(record)


def decode(data: bytes) -> AnyRecord:
    """The record in a ``Record`` envelope written by :func:`encode`; DecodeError if invalid."""
    record = _fast().reader.record(data)
    return reference_decode(data) if record is None else record


def encode_batch(records: Sequence[AnyRecord]) -> bytes:
    """A ``Batch`` message holding ``records`` in order."""
    try:
        return _fast().writer.batch(records)
    except Exception:  # as in encode
        return reference_encode_batch(records)


def encode_batch_and_structs(records: Sequence[AnyRecord]) -> tuple[bytes, list[bytes]]:
    """``(encode_batch(records), [encode_struct(r) for r in records])`` from one encoding, for a
    stage that publishes records both batched and one per public subject (the normalizer): the
    struct messages cost a copy instead of a second encoding."""
    try:
        return _fast().writer.batch_and_structs(records)
    except Exception:  # as in encode
        return reference_encode_batch(records), [reference_encode_struct(record) for record in records]


def decode_batch(data: bytes) -> list[AnyRecord]:
    """The records of a ``Batch`` message, in order; DecodeError if invalid."""
    records = _fast().reader.batch(data)
    return reference_decode_batch(data) if records is None else records


def reference_encode(record: AnyRecord) -> bytes:
    """:func:`encode` by pycapnp (the reference implementation)."""
    tables = _wire_tables()
    message = tables.record_struct.new_message()
    _fill_union(tables, message, record)
    return bytes(message.to_bytes())


def reference_decode(data: bytes) -> AnyRecord:
    """:func:`decode` by pycapnp (the reference implementation)."""
    tables = _wire_tables()
    try:
        return tables.read_union(_root(tables.record_struct, data))
    except Exception as e:  # untrusted bytes: every failure (kj, unicode, range) is a DecodeError
        raise _decode_error(data, e, "Record") from e


def reference_encode_batch(records: Sequence[AnyRecord]) -> bytes:
    """:func:`encode_batch` by pycapnp (the reference implementation)."""
    tables = _wire_tables()
    message = tables.batch_struct.new_message()
    items = message._init_by_field(tables.batch_records, len(records))
    for i, record in enumerate(records):
        _fill_union(tables, items[i], record)
    return bytes(message.to_bytes())


def reference_decode_batch(data: bytes) -> list[AnyRecord]:
    """:func:`decode_batch` by pycapnp (the reference implementation)."""
    tables = _wire_tables()
    try:
        read = tables.read_union
        return [read(item) for item in _root(tables.batch_struct, data)._get_by_field(tables.batch_records)]
    except Exception as e:  # untrusted bytes: every failure is a DecodeError
        raise _decode_error(data, e, "Batch") from e


def decode_stream(data: bytes) -> list[AnyRecord]:
    """The records of concatenated ``Record`` messages (an archive file's content)."""
    records = _fast().reader.stream(data)
    return reference_decode_stream(data) if records is None else records


def reference_decode_stream(data: bytes) -> list[AnyRecord]:
    """:func:`decode_stream` by pycapnp (the reference implementation)."""
    tables = _wire_tables()
    try:
        readers = tables.record_struct.read_multiple_bytes(data, traversal_limit_in_words=_traversal_limit(data))
        return [tables.read_union(reader) for reader in readers]
    except Exception as e:  # untrusted bytes: every failure is a DecodeError
        raise _decode_error(data, e, "Record stream") from e


class RecordMessage(NamedTuple):
    """One record of a batch as its own ``Record`` message, with what routing it needs."""

    kind: type[AnyRecord]
    ticker: str
    message: bytes


def split_batch(data: bytes) -> list[RecordMessage]:
    """Each record of a ``Batch`` as its own ``Record`` message (the archive format), in order.

    For stages that route or store records without reading them (archivers): each record's bytes
    are copied into a message of its own instead of being decoded and encoded again. Values are
    copied verbatim (the fast path also checks them; the reference path leaves that to whoever
    decodes the messages later). DecodeError if ``data`` is not a valid ``Batch``.
    """
    _fast()  # the layouts are checked against the schema before the first fast split
    parts = fastsplit.split(data, RecordMessage)
    return reference_split_batch(data) if parts is None else parts


def reference_split_batch(data: bytes) -> list[RecordMessage]:
    """:func:`split_batch` by pycapnp (the reference implementation), copying in C++."""
    tables = _wire_tables()
    try:
        copy = tables.copy_union
        return [RecordMessage(*copy(item)) for item in _root(tables.batch_struct, data)._get_by_field(
            tables.batch_records)]
    except Exception as e:  # untrusted bytes: every failure is a DecodeError
        raise _decode_error(data, e, "Batch") from e


def encode_struct(record: AnyRecord) -> bytes:
    """One record with its own struct as the message root (no envelope)."""
    try:
        return _fast().writer.struct(record)
    except Exception:  # as in encode
        return reference_encode_struct(record)


def reference_encode_struct(record: AnyRecord) -> bytes:
    """:func:`encode_struct` by pycapnp (the reference implementation)."""
    tables = _wire_tables()
    kind = _record_type(tables, type(record))
    message = tables.structs[kind].new_message()
    tables.writers[kind](message, record)
    return bytes(message.to_bytes())


def decode_struct(data: bytes, kind: type[R]) -> R:
    """The record of type ``kind`` whose struct is the root of ``data``; DecodeError if invalid.

    The bytes do not say which struct they hold: ``kind`` is trusted (it comes from the subject or
    file name), and bytes of another struct decode as whatever they mean in ``kind``'s layout.
    """
    record: Any = _fast().reader.struct(data, kind) if kind in _STRUCT_NAMES else None
    return reference_decode_struct(data, kind) if record is None else record


def reference_decode_struct(data: bytes, kind: type[R]) -> R:
    """:func:`decode_struct` by pycapnp (the reference implementation)."""
    tables = _wire_tables()
    _record_type(tables, kind)
    try:
        record: R = tables.readers[kind](_root(tables.structs[kind], data))
        return record
    except Exception as e:  # untrusted bytes: every failure is a DecodeError
        raise _decode_error(data, e, _STRUCT_NAMES.get(kind, str(kind))) from e


def _traversal_limit(data: bytes) -> int:
    # A valid message is read about once (twice when split_batch copies it), so 4x its size plus
    # slack never refuses one. pycapnp's default (8M words) would let a crafted 144-byte message
    # claim millions of zero-sized list elements: measured 25 s and gigabytes to decode.
    return 4 * (len(data) // 8) + 1024


def _root(struct: Any, data: bytes) -> Any:
    # The reader of the first message in data. pycapnp's iterator costs ~2 us where from_bytes'
    # context manager costs ~5; the root keeps its message (and data) alive, so no `with` is needed.
    for root in struct.read_multiple_bytes(data, traversal_limit_in_words=_traversal_limit(data)):
        return root
    msg = "no message"
    raise ValueError(msg)


def _record_type(tables: _wire.Tables, kind: type[Any]) -> type[Any]:
    if kind not in tables.structs:
        msg = f"not an ssmd record type: {kind.__name__}"
        raise TypeError(msg)
    return kind


def _fill_union(tables: _wire.Tables, builder: Any, record: AnyRecord) -> None:
    kind = _record_type(tables, type(record))
    tables.writers[kind](builder._init_by_field(tables.union_fields[kind]), record)


def _decode_error(data: bytes, cause: Exception, what: str) -> DecodeError:
    detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return DecodeError(f"invalid {what} message ({len(data)} bytes): {detail}")
