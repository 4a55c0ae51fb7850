"""One archive object being written: compressed frames on a local spool, resume state in memory.

A :class:`SpoolFile` is the unit both archivers build on. Appends go to an in-memory buffer; at each
upload the buffer becomes one zstd frame appended to the spool file on local disk, and the whole
object (metadata frame + every frame so far) is rebuilt from the spool and ``put`` whole. The spool
is a cache of what the store holds plus what is not yet uploaded; it is never a recovery source: a
restarted writer starts from the object in the store (:meth:`SpoolFile.from_object`).

Deduplication by input position. The archivers consume a stream whose events have a position
``(partition, offset)`` with offsets increasing within a partition, delivered at least once. A file's
``watermark`` maps each partition to the highest offset whose records for this file are all in it.
Events are applied whole (every record of one event that belongs to this file, in one call), so an
event at or below the watermark is already in the file and is skipped; after a crash the re-delivered
events are recognised exactly, with no per-record state. The watermark is stored in the object's
metadata frame, so it is replaced atomically with the data it describes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ssmd.archive import zfile

Position = tuple[int, int]
"""``(partition, offset)`` of an input event; offsets increase within a partition."""

PARTIAL = "partial"
COMPLETE = "complete"


class SpoolFile:
    """An archive object under construction. Not thread-safe; blocking methods say so."""

    def __init__(self, key: str, path: Path, meta: dict[str, Any] | None = None, *, now_ns: int = 0) -> None:
        meta = meta or {}
        self.key = key
        self.path = path
        self.watermark: dict[int, int] = {int(p): int(o) for p, o in meta.get("watermark", {}).items()}
        self.records: int = int(meta.get("records", 0))
        self.content_bytes: int = int(meta.get("content_bytes", 0))
        self.first_ns: int | None = meta.get("first_ns")
        self.last_ns: int | None = meta.get("last_ns")
        self.created_ns: int = int(meta.get("created_ns") or now_ns)
        self.modified_ns: int = int(meta.get("modified_ns") or now_ns)
        self.status: str = meta.get("status", PARTIAL)
        self.frames: int = int(meta.get("frames", 0))
        self.size: int = 0
        """Bytes of the object as last uploaded (or as loaded)."""
        self.pending = bytearray()
        self.version = 0
        self.uploaded_version = 0

    # -- creation ---------------------------------------------------------------------------------

    @classmethod
    def from_object(cls, key: str, path: Path, blob: bytes | None, *, now_ns: int) -> SpoolFile:
        """A file continuing the stored object ``blob`` (None: a new file). Blocking (writes the spool)."""
        if blob is None:
            return cls(key, path, now_ns=now_ns)  # the spool file appears with the first frame
        meta, body = zfile.unpack(blob, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        f = cls(key, path, meta, now_ns=now_ns)
        f.frames = max(f.frames, 1 if body else 0)  # an object from another writer has no frame count
        f.size = len(blob)
        return f

    # -- writing ----------------------------------------------------------------------------------

    def accepts(self, position: Position) -> bool:
        """Whether the event at ``position`` is not yet in this file."""
        partition, offset = position
        return offset > self.watermark.get(partition, -1)

    def append(self, data: bytes, count: int, first_ns: int, last_ns: int, position: Position) -> None:
        """Add ``count`` records (``data``, already encoded) of the event at ``position``."""
        self.pending += data
        self.records += count
        self.content_bytes += len(data)
        self.first_ns = first_ns if self.first_ns is None else min(self.first_ns, first_ns)
        self.last_ns = last_ns if self.last_ns is None else max(self.last_ns, last_ns)
        partition, offset = position
        self.watermark[partition] = max(offset, self.watermark.get(partition, -1))
        self.version += 1

    def touch(self) -> None:
        """Mark the file for upload without new data (e.g. to rewrite it as complete)."""
        self.version += 1

    @property
    def dirty(self) -> bool:
        return self.version != self.uploaded_version

    def build(self, *, now_ns: int, level: int, complete: bool = False) -> tuple[bytes, int]:
        """``(object bytes, version)`` for an upload; ``complete`` compacts the data into one frame.

        Blocking (compression and spool I/O): run it in a worker thread.
        """
        version = self.version
        if self.pending:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as out:
                out.write(zfile.compress(bytes(self.pending), level))
                out.flush()
                os.fsync(out.fileno())
            self.pending.clear()
            self.frames += 1
        body = self.path.read_bytes() if self.frames else b""
        if complete and self.frames != 1:
            body = zfile.compress(zfile.decompress(body, self.key), level) if self.records else b""
            self.path.write_bytes(body)
            self.frames = 1 if body else 0
        # Partial again if a completed file is reopened before its period ends (a clock that went back).
        self.status = COMPLETE if complete else PARTIAL
        self.modified_ns = now_ns
        return zfile.pack(self.meta(), body), version

    def uploaded(self, version: int, size: int) -> None:
        """Record that the object built at ``version`` (``size`` bytes) is now in the store."""
        self.uploaded_version = version
        self.size = size

    def meta(self) -> dict[str, Any]:
        return {
            "watermark": {str(p): o for p, o in sorted(self.watermark.items())},
            "records": self.records,
            "content_bytes": self.content_bytes,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "created_ns": self.created_ns,
            "modified_ns": self.modified_ns,
            "status": self.status,
            "frames": self.frames,
        }

    def content(self) -> bytes:
        """Everything in the file so far, decompressed. Blocking."""
        body = self.path.read_bytes() if self.frames else b""
        return zfile.decompress(body, self.key) + bytes(self.pending)

    def discard(self) -> None:
        """Remove the spool file (after the completed object is in the store)."""
        self.path.unlink(missing_ok=True)
