"""Issue 6 in the running pipeline: archiver workers write raw and normalized archives with manifests."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pipeline_helpers import read_settled, running, settings_for, wait_for

from ssmd import records as r
from ssmd.app import AppContext, topic_name
from ssmd.archive import ArchiveReader
from ssmd.devstack import NatsServer
from ssmd.errors import ConfigError
from ssmd.settings import Settings
from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import test_config
from ssmd.store import open_store


@contextlib.asynccontextmanager
async def archivers(settings: Settings) -> AsyncIterator[tuple[AppContext, AppContext]]:
    async with running(dataclasses.replace(settings, data_dir=settings.data_dir + "-a"), ("archiver",)) as a:
        async with running(dataclasses.replace(settings, data_dir=settings.data_dir + "-r"), ("raw_archiver",)) as b:
            yield a, b


async def test_archives_hold_every_frame_and_record(
    nats_server: NatsServer, store_settings: Settings, tmp_path: Path
) -> None:
    async with Simulator(test_config(markets=4, seed=9), key_path=tmp_path / "key.pem") as sim:
        settings = settings_for(sim, nats_server.url, tmp_path, archive_interval=0.5)
        settings = dataclasses.replace(
            settings, **{f.name: getattr(store_settings, f.name) for f in dataclasses.fields(Settings)
                         if f.name.startswith(("store_", "s3_"))},
        )  # fmt: skip
        async with running(settings) as main, archivers(settings):
            await wait_for(lambda: sum(len(v) for v in sim.ground_truth.sent.values()) >= 5, 20, "snapshots")
            for _ in range(10):
                await sim.step(20)
            counters = main.services["normalizer"].counters
            sent = sum(len(v) for v in sim.ground_truth.sent.values())
            await wait_for(lambda: counters.frames - counters.markers >= sent, 30, "all frames normalized")
            raw = await read_settled(nats_server.url, topic_name(settings.env, "raw"))
            normalized = await read_settled(nats_server.url, topic_name(settings.env, "normalized"))
            frames = sorted(f.data for f in raw if isinstance(f, r.RawFrame))
            want = Counter(type(x).__name__ for x in normalized if not isinstance(x, r.Gap))
            # The archivers upload every 0.5 s while running: wait until the store holds everything
            # (they may lag the normalizer on a loaded machine), then stop them (a final upload too).
            async with open_store(settings) as store:
                reader = ArchiveReader(store, env=settings.env)
                for _ in range(120):
                    got, archived = await _archived(reader)
                    if archived == frames and got == want:
                        break
                    await asyncio.sleep(0.25)
        # every worker stopped: their final uploads are done

    async with open_store(settings) as store:
        reader = ArchiveReader(store, env=settings.env)
        days = await reader.ticker_days()
        assert days, "manifests list the ticker-days"
        assert all(d.condition == "pending" and d.quality_score == 1.0 for d in days)  # today: partial, no gaps
        got, archived = await _archived(reader)
        assert got == want  # every record once: none missing, none doubled
        assert archived == frames  # every frame once, byte for byte


async def _archived(reader: ArchiveReader) -> tuple[Counter[str], list[bytes]]:
    got: Counter[str] = Counter()
    days = await reader.ticker_days()
    for d in days:
        for rec in await reader.records(d.data_type, d.ticker, d.date):
            got[type(rec).__name__] += 1
    dates = sorted({d.date for d in days})
    archived = sorted([line.frame().data for date in dates async for line in reader.raw_lines(date)])
    return got, archived


def test_archivers_run_in_workers_of_their_own(tmp_path: Path) -> None:
    from ssmd.app import create_app

    settings = Settings(nats_url="nats://127.0.0.1:1", data_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="cannot share one worker"):
        create_app(settings, ("normalizer", "archiver"))
    with pytest.raises(ConfigError, match="cannot share one worker"):
        create_app(settings, ("archiver", "raw_archiver"))


async def test_a_second_archiver_takes_a_share_and_every_record_is_archived_once(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """Archiver A holds every partition; B joins, the group rebalances (A gives its ticker-days up, each
    takes over its share from the store): every record ends up archived exactly once."""
    async with Simulator(test_config(markets=6, seed=21, lifecycle_prob=0.0), key_path=tmp_path / "key.pem") as sim:
        settings = settings_for(sim, nats_server.url, tmp_path, archive_interval=0.3,
                                store_url=f"file://{tmp_path / 'store'}")  # fmt: skip
        a_settings = dataclasses.replace(settings, data_dir=settings.data_dir + "-a")
        b_settings = dataclasses.replace(settings, data_dir=settings.data_dir + "-b")
        async with running(settings) as main, running(a_settings, ("archiver",)) as a:
            counters = main.services["normalizer"].counters
            await wait_for(lambda: counters.frames >= 6, 20, "snapshots normalized")
            for _ in range(5):
                await sim.step(20)
            async with running(b_settings, ("archiver",)) as b:
                await wait_for(lambda: bool(a.app.consumer.assignment()) and bool(b.app.consumer.assignment()), 30,
                               "both archivers assigned")  # fmt: skip
                for _ in range(5):
                    await sim.step(20)
                sent = sum(len(v) for v in sim.ground_truth.sent.values())
                await wait_for(lambda: counters.frames - counters.markers >= sent, 30, "all frames normalized")
                normalized = await read_settled(nats_server.url, topic_name(settings.env, "normalized"))
                want = Counter(type(x).__name__ for x in normalized if not isinstance(x, r.Gap))
                async with open_store(settings) as store:
                    reader = ArchiveReader(store, env=settings.env)
                    for _ in range(120):
                        got, _ = await _archived(reader)
                        if got == want:
                            break
                        await asyncio.sleep(0.25)
    async with open_store(settings) as store:
        got, _ = await _archived(ArchiveReader(store, env=settings.env))
    assert got == want  # none missing, none doubled across the handover
