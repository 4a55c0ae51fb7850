"""Raw stream messages removed before the raw archiver read them are a bus gap in the raw day's manifest.

Real nats-server, the real simulator, the apps in process. The raw archiver archives, stops (committing its
offsets); messages it never read are stored on every raw partition and the raw stream is purged, as a
retention limit would remove them while the archiver is down. The restarted archiver must say so: one
``bus`` gap (not one per partition: they all see the same removal) naming the stream and the removed
sequence range, from the last frame archived before the removal to the first one after it, in the day's
manifest, whose quality score drops below 1. Without it, the manifest would call the day complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import time
from pathlib import Path
from typing import Any

import nats
from nats.js.errors import NoKeysError
from pipeline_helpers import running, settings_for, steps, wait_for

from ssmd.app import topic_name
from ssmd.archive import ArchiveReader
from ssmd.archive.manifest import gaps_of
from ssmd.devstack import NatsServer
from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import test_config
from ssmd.store import open_store
from ssmd.transport import naming


async def test_raw_messages_removed_unarchived_are_a_bus_gap(nats_server: NatsServer, tmp_path: Path) -> None:
    async with Simulator(test_config(markets=4, seed=9, lifecycle_prob=0.0), key_path=tmp_path / "key.pem") as sim:
        settings = settings_for(sim, nats_server.url, tmp_path, archive_interval=0.3,
                                store_url=f"file://{tmp_path / 'store'}")  # fmt: skip
        archiver = dataclasses.replace(settings, data_dir=settings.data_dir + "-r")
        raw_stream = naming.stream_name(topic_name(settings.env, "raw"))
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        try:
            async with running(settings):
                async with running(archiver, ("raw_archiver",)) as arch:
                    await steps(sim, 100)
                    writer = arch.services["raw_archiver"]
                    await wait_for(lambda: sum(f.records for f in writer._files.files.values()) >= 20, 20,
                                   "frames archived")  # fmt: skip
                    await committed(js, arch.app.conf.id, topic_name(settings.env, "raw"), settings.partitions)
                before = await js.stream_info(raw_stream, subjects_filter=">")
                assert len(before.state.subjects or {}) == settings.partitions
                for subject in sorted(before.state.subjects or {}):
                    await js.publish(subject, b"stored, never archived, then removed")
                await js.purge_stream(raw_stream)
                removed_to = (await js.stream_info(raw_stream)).state.first_seq
                removed_at = time.time_ns()
                await steps(sim, 100)  # new frames after the removal
                async with running(archiver, ("raw_archiver",)) as arch:
                    writer = arch.services["raw_archiver"]
                    await wait_for(lambda: max((f.last_ns or 0 for f in writer._files.files.values()), default=0)
                                   > removed_at, 30, "frames after the removal archived")  # fmt: skip
                    await steps(sim, 40)
        finally:
            await nc.close()

    today = dt.datetime.now(dt.UTC).date()
    async with open_store(settings) as store:
        reader = ArchiveReader(store, env=settings.env)
        days = (today - dt.timedelta(days=1), today)
        manifests = [m for d in days if (m := await reader.raw_manifest(d))]
        lines = [line for d in days async for line in reader.raw_lines(d)]
    bus = [g for m in manifests for g in gaps_of(m) if g.kind == "bus"]
    assert len(bus) == 1, bus  # one removal, seen by every partition: one gap
    (gap,) = bus
    assert gap.ticker == "" and gap.stream == raw_stream and gap.missing == 0
    assert gap.received_seq == removed_to and 0 < gap.expected_seq < removed_to  # type: ignore[operator]
    times = sorted(line.received_ns for line in lines)
    before_gap = [t for t in times if t <= gap.start_ns]
    after_gap = [t for t in times if t >= gap.received_ns]
    assert before_gap and after_gap  # frames archived on both sides of it
    assert gap.start_ns == before_gap[-1] and gap.end_ns == gap.received_ns == after_gap[0]
    assert not [t for t in times if gap.start_ns < t < gap.received_ns]  # nothing archived inside it
    assert all(m["quality_score"] < 1.0 for m in manifests if any(g.kind == "bus" for g in gaps_of(m)))


async def committed(js: Any, app_id: str, topic: str, partitions: int) -> None:
    """Wait until the app has committed an offset of every partition of ``topic`` (after an upload)."""
    kv = await js.key_value(naming.offsets_bucket(app_id))
    keys = {naming.offset_key(topic, p) for p in range(partitions)}
    for _ in range(200):
        with contextlib.suppress(NoKeysError):
            if keys <= set(await kv.keys()):
                return
        await asyncio.sleep(0.1)
    msg = f"no committed offsets of {topic} in {naming.offsets_bucket(app_id)}"
    raise AssertionError(msg)
