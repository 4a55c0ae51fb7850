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

from faust.types import TP

from ssmd import codec
from ssmd.agents.archiving import run_archiver
from ssmd.archive import Position, RawArchiver
from ssmd.errors import DecodeError
from ssmd.records import Gap, RawFrame
from ssmd.store import open_store
from ssmd.transport import naming

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

        # Raw stream holes (nats:// only: memory:// loses nothing); looked up once, not per event.
        take_holes = getattr(ctx.app.consumer, "take_holes", None)
        topic = ctx.raw.get_topic_name()
        stream_name = naming.stream_name(topic)

        async def add(value: bytes, position: Position) -> None:
            try:
                items = codec.decode_batch(value)
            except DecodeError as e:
                log.error("undecodable raw batch at %s: %s", position, e)
                return
            if take_holes is not None and (holes := take_holes(TP(topic, position[0]))):
                at_ns = min((x.received_ns for x in items if isinstance(x, RawFrame)), default=time.time_ns())
                for first, end in holes:
                    log.warning("raw partition %d: stream sequences %d..%d were removed before they were "
                                "archived; a bus gap in the raw manifest", position[0], first, end - 1)  # fmt: skip
                    await writer.bus_gap(first, end, stream_name, at_ns)
            await writer.add([x for x in items if isinstance(x, RawFrame | Gap)], position)

        try:
            await run_archiver(stream, writer, add, settings.archive_interval, "raw archiver")
        finally:
            await store.close()
