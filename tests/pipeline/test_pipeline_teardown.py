"""Teardown after real workers ran: every stream and KV bucket of the env goes, a look-alike env stays."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import nats
from pipeline_helpers import running

from ssmd import teardown
from ssmd.devstack import NatsServer
from ssmd.settings import Settings


async def _streams(url: str) -> set[str]:
    nc = await nats.connect(url)
    names = {s.config.name for s in await nc.jetstream().streams_info()}
    await nc.close()
    return names


async def test_teardown_finds_every_stream_of_the_env(nats_server: NatsServer, tmp_path: Path) -> None:
    base = Settings(nats_url=nats_server.url, data_dir=str(tmp_path), partitions=2)
    for env in ("kalshi-dev", "kalshi-dev-2"):  # the second shares the first's string prefix
        settings = dataclasses.replace(base, env=env, data_dir=str(tmp_path / env))
        async with running(settings, ("normalizer", "activity")):
            await asyncio.sleep(0.5)
        async with running(dataclasses.replace(settings, data_dir=str(tmp_path / f"{env}-a")), ("archiver",)):
            await asyncio.sleep(0.2)
    before = await _streams(nats_server.url)
    nc = await nats.connect(nats_server.url)
    try:
        plan = await teardown.plan("kalshi-dev", None, store=None, nc=nc, redis=None)
        mine = set(plan.streams)
        assert mine and mine < before
        await teardown.execute(plan, store=None, nc=nc, redis=None)
    finally:
        await nc.close()
    after = await _streams(nats_server.url)
    assert after == before - mine
    assert all("kalshi-dev-2" in name or "kalshi-dev_2" in name or name == "FAUST_DLQ" for name in after), after
    assert any("kalshi-dev-2" in name or "kalshi-dev_2" in name for name in after)
