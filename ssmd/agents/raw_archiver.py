"""The raw archiver agent: raw batches -> ``ssmd-raw/{env}/kalshi/YYYY/MM/DD/{type}-HH.jsonl.zst``.

Every frame (and marker) of the raw stream, byte for byte, one JSON line each, rotated by the hour of
receive time, with a per-day ``manifest.json`` (:class:`~ssmd.archive.RawArchiver`). Offsets are
committed only after the upload (:mod:`ssmd.agents.archiving`).

An hour file holds every partition's frames, so there is exactly one raw archiver per environment: it
runs in its own app (``ssmd-{env}-raw-archiver``, ``ssmd worker --agents raw_archiver``), which holds
every partition of the raw topic while it is the only member. Run one such worker (a second would split
the partitions and both would rewrite the same hour files).

Raw stream messages removed before the archiver read them (a retention limit passed while it was down or
behind, a purge) are not in the archive: the day's manifest lists them as a ``bus`` gap
(:meth:`~ssmd.archive.RawArchiver.bus_gap`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssmd import codec
from ssmd.agents.archiving import run_archiver
from ssmd.agents.holes import StreamHoles
from ssmd.archive import Position, RawArchiver
from ssmd.errors import DecodeError
from ssmd.records import Gap, RawFrame
from ssmd.store import open_store

if TYPE_CHECKING:
    from ssmd.app import AppContext

log = logging.getLogger("ssmd.agents.raw_archiver")


def install(ctx: AppContext) -> None:
    settings = ctx.settings

    @ctx.app.agent(ctx.raw, name="raw_archiver")
    async def archive(stream: Any) -> None:
        store = open_store(settings)
        writer = RawArchiver(store, env=settings.env, spool_dir=Path(settings.data_dir) / "spool" / "raw")
        ctx.services["raw_archiver"] = writer
        await writer.resume()

        holes = StreamHoles(ctx.app, ctx.raw.get_topic_name())

        async def add(value: bytes, position: Position) -> None:
            try:
                items = codec.decode_batch(value)
            except DecodeError as e:
                log.error("undecodable raw batch at %s: %s", position, e)
                return
            for first, end in holes.take(position[0], "a bus gap in the raw manifest"):
                at_ns = min((x.received_ns for x in items if isinstance(x, RawFrame)), default=time.time_ns())
                await writer.bus_gap(first, end, holes.stream, at_ns)
            await writer.add([x for x in items if isinstance(x, RawFrame | Gap)], position)

        try:
            await run_archiver(stream, writer, add, settings.archive_interval, "raw archiver")
        finally:
            await store.close()
