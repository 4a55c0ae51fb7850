"""The normalized archiver agent: normalized batches -> per ticker-day ``data.capnp.zst`` + manifests.

Records go to ``ssmd-normalized/{env}/kalshi/v1/{type}/YYYY/MM/DD/{ticker}/data.capnp.zst``, uploaded
whole every ``archive_interval`` seconds (status ``partial``) and at day close (``complete``), with
manifests carrying gaps and the quality score (:class:`~ssmd.archive.NormalizedArchiver`). Offsets are
committed only after the upload (:mod:`ssmd.agents.archiving`). A ticker has one partition, hence one
writer; any number of archiver workers (``ssmd worker --agents archiver``) share the partitions.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssmd import codec
from ssmd.agents.archiving import run_archiver
from ssmd.archive import NormalizedArchiver, Position
from ssmd.errors import DecodeError
from ssmd.partitioning import partition_for
from ssmd.records import RawFrame
from ssmd.store import open_store

if TYPE_CHECKING:
    from ssmd.app import AppContext

log = logging.getLogger("ssmd.agents.archiver")


def install(ctx: AppContext) -> None:
    settings, app = ctx.settings, ctx.app

    @app.agent(ctx.normalized, name="archiver")
    async def archive(stream: Any) -> None:
        store = open_store(settings)
        writer = NormalizedArchiver(store, env=settings.env, spool_dir=Path(settings.data_dir) / "spool" / "normalized")
        ctx.services["archiver"] = writer
        topic = ctx.normalized.get_topic_name()
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == topic}
        await writer.resume(owns=lambda t: partition_for(t, ctx.partitions) in owned)

        async def add(value: bytes, position: Position) -> None:
            try:
                records = codec.decode_batch(value)
            except DecodeError as e:
                log.error("undecodable normalized batch at %s: %s", position, e)
                return
            await writer.add([x for x in records if not isinstance(x, RawFrame)], position)

        try:
            await run_archiver(stream, writer, add, settings.archive_interval, "archiver")
        finally:
            await store.close()
