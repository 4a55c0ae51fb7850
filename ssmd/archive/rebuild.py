"""Re-normalize one day from the raw archive: the way out after a Kalshi wire-format change.

The raw archive is the source of truth: every exchange frame of the day, byte for byte, plus the
capture's marker frames (sequence gaps, disconnects). :func:`rebuild_day` reads them all, puts them
back in receive order (``(received_ns, connection, frame number)``: the hour files split frames by
type), runs them through a fresh :class:`~ssmd.normalize.normalizer.Normalizer` (today's parsers, so
a fixed parser fixes old days), deletes the day's normalized objects and writes the result with the
normal :class:`~ssmd.archive.NormalizedArchiver`, manifests and quality scores included.

Books that were open at midnight are rebuilt from the day's first snapshot of each market; deltas
before it are flagged records with a gap, exactly as live capture would have had them.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from typing import Any

from ssmd import names
from ssmd.archive.normalized import NormalizedArchiver
from ssmd.archive.reader import ArchiveReader
from ssmd.normalize.normalizer import Normalizer, Output
from ssmd.records import RawFrame
from ssmd.store import ObjectStore

CHUNK = 5000


@dataclass(frozen=True)
class RebuildResult:
    frames: int
    records: int
    deleted: int
    malformed: int


async def rebuild_day(store: ObjectStore, env: str, date: dt.date, *, feed: str = "kalshi",
                      dry_run: bool = False) -> RebuildResult:  # fmt: skip
    """Rebuild ``env``'s normalized archive of ``date`` from its raw archive; see the module docstring."""
    reader = ArchiveReader(store, env=env, feed=feed)
    frames: list[RawFrame] = [line.frame() async for line in reader.raw_lines(date)]
    frames.sort(key=lambda f: (f.received_ns, f.connection_id or 0, f.frame_no or 0))
    normalizer = Normalizer()
    out = Output()
    for frame in frames:
        normalizer.process(frame, out)
    day = names.date_path(date) + "/"
    base = names.normalized_prefix(env, feed)
    stale = [i.key async for i in store.list(base) if i.key[len(base) :].partition("/")[2].startswith(day)]
    if dry_run:
        return RebuildResult(len(frames), len(out.records), 0, normalizer.counters.malformed)
    for key in stale:
        await store.delete(key)
    with tempfile.TemporaryDirectory(prefix="ssmd-rebuild-") as spool:
        writer = NormalizedArchiver(store, env=env, feed=feed, spool_dir=spool)
        records: list[Any] = out.records
        for i in range(0, len(records), CHUNK):
            await writer.add(records[i : i + CHUNK], (0, i // CHUNK))
        await writer.flush()
        await writer.close()
    return RebuildResult(len(frames), len(out.records), len(stale), normalizer.counters.malformed)
