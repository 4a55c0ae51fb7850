"""The normalized archiver agent: normalized batches -> per ticker-day ``data.capnp.zst`` + manifests.

Records go to ``ssmd-normalized/{env}/kalshi/v1/{type}/YYYY/MM/DD/{ticker}/data.capnp.zst``, uploaded
whole every ``archive_interval`` seconds (status ``partial``) and at day close (``complete``), with
manifests carrying gaps and the quality score (:class:`~ssmd.archive.NormalizedArchiver`). Offsets are
committed only after the upload (:mod:`ssmd.agents.archiving`). A ticker has one partition, hence one
writer; any number of archiver workers (``ssmd worker --agents archiver``) share the partitions.
Normalized stream messages removed before the archiver read them are a ``bus`` gap in the manifests of
the ticker-days it holds open.

On a rebalance (eager: every partition is revoked, then the new set assigned) the writer gives up its
ticker-days before the new owners start (:meth:`~ssmd.archive.NormalizedArchiver.release`) and takes
over those of its new partitions again from the store (:class:`Resumer`): a rebalance costs a reload,
never a ticker-day written by two writers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssmd import codec
from ssmd.agents.archiving import run_archiver
from ssmd.agents.holes import StreamHoles
from ssmd.archive import NormalizedArchiver, Position
from ssmd.errors import DecodeError
from ssmd.partitioning import partition_for
from ssmd.records import AnyRecord, RawFrame
from ssmd.store import open_store

if TYPE_CHECKING:
    from ssmd.app import AppContext

log = logging.getLogger("ssmd.agents.archiver")


class Resumer:
    """Takes over the unfinished ticker-days of each assigned partition once, before it archives anything.

    The agent starts before the group assigns it partitions, so the takeover follows the assignment
    (:meth:`start`, from the ``on_partitions_assigned`` signal, in the background so the rebalance does not
    wait for the store), and each event first waits for its partition's (:meth:`ready`): a bus gap must
    find every ticker-day of the partition open, and a ticker-day that gets no more records is completed
    at the day's end only if it was taken over. A failed takeover is logged and tried again with the
    partition's next event; the event is archived meanwhile (its own ticker-days load as it needs them).
    """

    def __init__(self, writer: NormalizedArchiver, partitions: int) -> None:
        self.writer = writer
        self.partitions = partitions
        self._resumed: dict[int, asyncio.Future[None]] = {}

    def start(self, partitions: set[int]) -> None:
        new = {p for p in partitions if p not in self._resumed}
        if not new:
            return
        task = asyncio.ensure_future(self.writer.resume(owns=lambda t: partition_for(t, self.partitions) in new))
        for p in new:
            self._resumed[p] = task

    def forget(self, partitions: set[int]) -> None:
        """Partitions revoked: take them over again if they come back."""
        for p in partitions:
            self._resumed.pop(p, None)

    async def ready(self, partition: int) -> None:
        task = self._resumed.get(partition)
        if task is None:
            self.start({partition})
            task = self._resumed[partition]
        elif task.done() and not task.cancelled() and task.exception() is None:
            return  # taken over: every later event of the partition passes here
        try:
            await asyncio.shield(task)
        except Exception as e:  # the store unreachable: tried again with the partition's next event
            if self._resumed.get(partition) is task:
                del self._resumed[partition]
            log.error("taking over the unfinished ticker-days of partition %d failed (retried): %r", partition, e)


def install(ctx: AppContext) -> None:
    settings, app = ctx.settings, ctx.app
    topic = ctx.normalized.get_topic_name()

    def mine(tps: Any) -> set[int]:
        return {tp.partition for tp in tps if tp.topic == topic}

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _resume(sender: Any, assigned: Any, **kw: Any) -> None:
        if (resumer := ctx.services.get("archiver-resumer")) is not None:
            resumer.start(mine(assigned))

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _release(sender: Any, revoked: Any, **kw: Any) -> None:
        gone = mine(revoked)
        if (resumer := ctx.services.get("archiver-resumer")) is not None:
            resumer.forget(gone)
        if gone and (writer := ctx.services.get("archiver")) is not None:
            n = await writer.release(lambda t: partition_for(t, ctx.partitions) not in gone, gone)
            log.info("partitions %s moved away: %d ticker-days given up", sorted(gone), n)

    @app.agent(ctx.normalized, name="archiver")
    async def archive(stream: Any) -> None:
        store = open_store(settings)
        writer = NormalizedArchiver(store, env=settings.env, spool_dir=Path(settings.data_dir) / "spool" / "normalized")
        ctx.services["archiver"] = writer
        resumer = ctx.services["archiver-resumer"] = Resumer(writer, ctx.partitions)
        resumer.start(mine(app.consumer.assignment()))
        holes = StreamHoles(app, topic)

        async def add(value: bytes, position: Position) -> None:
            try:
                records = codec.decode_batch(value)
            except DecodeError as e:
                log.error("undecodable normalized batch at %s: %s", position, e)
                return
            await resumer.ready(position[0])
            kept: list[AnyRecord] = [x for x in records if not isinstance(x, RawFrame)]
            for first, end in holes.take(position[0], "a bus gap in the normalized manifests"):
                at_ns = min((x.received_ns for x in kept), default=time.time_ns())
                if (gap := writer.bus_gap(first, end, holes.stream, at_ns)) is not None:
                    kept.insert(0, gap)
            await writer.add(kept, position)

        try:
            await run_archiver(stream, writer, add, settings.archive_interval, "archiver")
        finally:
            await store.close()
