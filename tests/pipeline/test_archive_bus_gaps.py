"""Stream messages removed before an archiver read them are a bus gap in its manifests (raw and normalized).

Real nats-server, the real simulator, the apps in process. Both archivers archive, stop (committing their
offsets); messages they never read are stored on every partition of the raw and normalized streams, and
both streams are purged, as a retention limit would remove them while the archivers are down. The
restarted archivers must say so. Raw: one ``bus`` gap (not one per partition: they all see the same
removal) naming the stream and the removed range, from the last frame archived before the removal to
the first one after it, and a quality score below 1. Normalized: the same gap, naming the normalized
stream, in the manifest of every ticker-day. Without it, the manifests would call the days complete.
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

from ssmd.app import AppContext, topic_name
from ssmd.archive import ArchiveReader
from ssmd.archive.manifest import gaps_of
from ssmd.devstack import NatsServer
from ssmd.records import Gap
from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import test_config
from ssmd.store import open_store
from ssmd.transport import naming

MARKETS = 4


async def test_messages_removed_unarchived_are_a_bus_gap(nats_server: NatsServer, tmp_path: Path) -> None:
    config = test_config(markets=MARKETS, seed=9, lifecycle_prob=0.0)
    async with Simulator(config, key_path=tmp_path / "key.pem") as sim:
        settings = settings_for(sim, nats_server.url, tmp_path, archive_interval=0.3,
                                store_url=f"file://{tmp_path / 'store'}")  # fmt: skip
        raw_archiver = dataclasses.replace(settings, data_dir=settings.data_dir + "-r")
        archiver = dataclasses.replace(settings, data_dir=settings.data_dir + "-n")
        topics = {kind: topic_name(settings.env, kind) for kind in ("raw", "normalized")}
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        removed_to: dict[str, int] = {}
        try:
            async with running(settings):
                async with running(raw_archiver, ("raw_archiver",)) as r, running(archiver, ("archiver",)) as n:
                    await steps(sim, 100)
                    await wait_for(lambda: archived(r, "raw_archiver") >= 20 and archived(n, "archiver") >= 20, 20,
                                   "records archived")  # fmt: skip
                    await committed(js, r, topics["raw"], settings.partitions)
                    await committed(js, n, topics["normalized"], settings.partitions)
                for kind, topic in topics.items():
                    stream = naming.stream_name(topic)
                    stored = await js.stream_info(stream, subjects_filter=">")
                    assert len(stored.state.subjects or {}) == settings.partitions
                    for subject in sorted(stored.state.subjects or {}):
                        await js.publish(subject, b"stored, never archived, then removed")
                    await js.purge_stream(stream)
                    removed_to[kind] = (await js.stream_info(stream)).state.first_seq
                removed_at = time.time_ns()
                await steps(sim, 100)  # new frames and records after the removal
                async with running(raw_archiver, ("raw_archiver",)) as r, running(archiver, ("archiver",)) as n:
                    await wait_for(lambda: min(latest(r, "raw_archiver"), latest(n, "archiver")) > removed_at, 30,
                                   "frames and records after the removal archived")  # fmt: skip
                    await steps(sim, 40)
        finally:
            await nc.close()

    today = dt.datetime.now(dt.UTC).date()
    days = (today - dt.timedelta(days=1), today)
    async with open_store(settings) as store:
        reader = ArchiveReader(store, env=settings.env)
        raw_manifests = [m for d in days if (m := await reader.raw_manifest(d))]
        lines = [line for d in days async for line in reader.raw_lines(d)]
        ticker_days = [td for d in days for td in await reader.ticker_days(date=d, data_type="orderbook")]
        normalized = {td.ticker: await reader.manifest("orderbook", td.date, td.ticker) for td in ticker_days}

    bus = [g for m in raw_manifests for g in gaps_of(m) if g.kind == "bus"]
    assert len(bus) == 1, bus  # one removal, seen by every partition: one gap
    (gap,) = bus
    check(gap, naming.stream_name(topics["raw"]), removed_to["raw"])
    times = sorted(line.received_ns for line in lines)
    before_gap = [t for t in times if t <= gap.start_ns]
    after_gap = [t for t in times if t >= gap.received_ns]
    assert before_gap and after_gap  # frames archived on both sides of it
    assert gap.start_ns == before_gap[-1] and gap.end_ns == gap.received_ns == after_gap[0]
    assert not [t for t in times if gap.start_ns < t < gap.received_ns]  # nothing archived inside it
    assert all(m["quality_score"] < 1.0 for m in raw_manifests if any(g.kind == "bus" for g in gaps_of(m)))

    assert len(normalized) == MARKETS
    for ticker, m in normalized.items():
        assert m is not None
        bus = [g for g in gaps_of(m) if g.kind == "bus"]
        assert len(bus) == 1, (ticker, bus)
        check(bus[0], naming.stream_name(topics["normalized"]), removed_to["normalized"], ticker)
        assert m["quality_score"] < 1.0


def check(gap: Gap, stream: str, removed_to: int, ticker: str = "") -> None:
    assert gap.ticker == ticker and gap.stream == stream and gap.missing == 0
    assert gap.received_seq == removed_to and 0 < gap.expected_seq < removed_to  # type: ignore[operator]
    assert gap.end_ns is not None and gap.start_ns < gap.end_ns


def archived(ctx: AppContext, name: str) -> int:
    writer = ctx.services.get(name)
    return sum(f.records for f in writer._files.files.values()) if writer is not None else 0


def latest(ctx: AppContext, name: str) -> int:
    writer = ctx.services.get(name)
    return max((f.last_ns or 0 for f in writer._files.files.values()), default=0) if writer is not None else 0


async def committed(js: Any, ctx: AppContext, topic: str, partitions: int) -> None:
    """Wait until the app has committed an offset of every partition of ``topic`` (after an upload)."""
    app_id = str(ctx.app.conf.id)
    kv = await js.key_value(naming.offsets_bucket(app_id))
    keys = {naming.offset_key(topic, p) for p in range(partitions)}
    for _ in range(200):
        with contextlib.suppress(NoKeysError):
            if keys <= set(await kv.keys()):
                return
        await asyncio.sleep(0.1)
    msg = f"no committed offsets of {topic} in {naming.offsets_bucket(app_id)}"
    raise AssertionError(msg)
