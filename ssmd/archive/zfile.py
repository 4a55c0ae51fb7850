"""The archive object format: zstd frames, led by a skippable frame of writer metadata.

An archive object (``*.jsonl.zst``, ``data.capnp.zst``) is::

    [skippable frame: JSON metadata] [zstd frame] [zstd frame] ...

The zstd format defines skippable frames (magic ``0x184D2A50``) that every decoder passes over, so
``zstd -d`` prints exactly the data frames' content, and ``capnp decode`` reads that. The metadata
frame is how the writer's resume state (input watermark, counts, creation time) travels atomically
with the data it describes: one ``put`` replaces both, so a crash can never leave the two out of
step. Objects without a metadata frame (written by another tool) read with empty metadata.

Several data frames appear while a file is being written (one per upload interval, so an upload
compresses only what is new); a completed file is compacted into one frame.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import zstandard

from ssmd.errors import DecodeError

FORMAT = "ssmd-archive/1"
SKIPPABLE_MAGIC = 0x184D2A50
_HEADER = struct.Struct("<II")


def pack(meta: dict[str, Any], body: bytes) -> bytes:
    """An object: ``meta`` as a leading skippable frame, then ``body`` (zstd frames) verbatim."""
    text = json.dumps({"format": FORMAT, **meta}, separators=(",", ":"), sort_keys=True).encode()
    return _HEADER.pack(SKIPPABLE_MAGIC, len(text)) + text + body


def unpack(blob: bytes, key: str = "") -> tuple[dict[str, Any], bytes]:
    """``(meta, body)`` of an object; meta is ``{}`` when the object has no ssmd metadata frame."""
    if len(blob) < _HEADER.size:
        return {}, blob
    magic, size = _HEADER.unpack_from(blob)
    if magic != SKIPPABLE_MAGIC:
        return {}, blob
    end = _HEADER.size + size
    try:
        meta = json.loads(blob[_HEADER.size : end])
    except (ValueError, UnicodeDecodeError) as e:
        msg = f"archive object {key!r}: unreadable metadata frame"
        raise DecodeError(msg) from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        msg = f"archive object {key!r}: metadata frame is not {FORMAT}"
        raise DecodeError(msg)
    return meta, blob[end:]


def compress(data: bytes, level: int = 3) -> bytes:
    """One zstd frame holding ``data`` (with its content size, so readers can preallocate)."""
    return zstandard.ZstdCompressor(level=level).compress(data)


def decompress(body: bytes, key: str = "") -> bytes:
    """The concatenated content of every frame in ``body`` (skippable frames contribute nothing)."""
    try:
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body), read_across_frames=True) as r:
            return r.read()
    except zstandard.ZstdError as e:
        msg = f"archive object {key!r}: corrupt zstd data: {e}"
        raise DecodeError(msg) from e


def read(blob: bytes, key: str = "") -> tuple[dict[str, Any], bytes]:
    """``(meta, content)``: the metadata and the decompressed data of a whole object."""
    meta, body = unpack(blob, key)
    return meta, decompress(body, key)
