"""``ssmd env teardown`` against real NATS, Valkey and both object stores: only the env's data goes."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import nats
import redis

from ssmd import names
from ssmd.devstack import NatsServer, ValkeyServer
from ssmd.settings import Settings
from ssmd.store import open_store

D1, D2 = dt.date(2025, 12, 14), dt.date(2025, 12, 15)
ENV, OTHER = "kalshi-dev", "kalshi-dev2"  # OTHER shares ENV's string prefix: it must survive


async def _seed(settings: Settings, nats_url: str, redis_url: str) -> None:
    async with open_store(settings) as store:
        for env in (ENV, OTHER):
            for day in (D1, D2):
                await store.put(names.raw_key(env, "kalshi", "trade", day, 3), b"raw")
                await store.put(names.raw_manifest_key(env, "kalshi", day), b"{}")
                await store.put(names.normalized_key(env, "kalshi", "trade", day, "A.B"), b"n")
                await store.put(names.normalized_manifest_key(env, "kalshi", "orderbook", day, "C"), b"{}")
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    for env in (ENV, OTHER):
        await js.add_stream(name=names.stream_name(env, "kalshi", "raw"), subjects=[f"{env}.kalshi.raw.>"])
        await js.create_key_value(bucket=names.kv_bucket(env, "offsets"))
    await js.add_stream(name="legacy", subjects=[f"{ENV}.legacy.>"])  # env's by its subjects alone
    await nc.close()
    r = redis.Redis.from_url(redis_url)
    for env in (ENV, OTHER):
        r.set(names.redis_key(env, "kalshi", "price", "A.B"), "0.5")
    r.close()


async def _inventory(settings: Settings, nats_url: str, redis_url: str) -> tuple[list[str], list[str], list[str]]:
    async with open_store(settings) as store:
        objects = [i.key for prefix in ("ssmd-raw/", "ssmd-normalized/") async for i in store.list(prefix)]
    nc = await nats.connect(nats_url)
    streams = sorted([s.config.name for s in await nc.jetstream().streams_info()])
    await nc.close()
    r = redis.Redis.from_url(redis_url)
    keys = sorted(k.decode() for k in r.keys("*"))
    r.close()
    return objects, streams, keys


def _cli(*args: str, settings: Settings, nats_url: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SSMD_STORE_URL": settings.store_url,
        "SSMD_NATS_URL": nats_url,
        "SSMD_REDIS_URL": redis_url,
    }
    if settings.s3_endpoint_url:
        env |= {
            "SSMD_S3_ENDPOINT_URL": settings.s3_endpoint_url,
            "SSMD_S3_ACCESS_KEY_ID": "testing",
            "SSMD_S3_SECRET_ACCESS_KEY": "testing",
        }
    return subprocess.run(
        [sys.executable, "-m", "ssmd.cli", "env", "teardown", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_teardown_whole_env(store_settings: Settings, nats_server: NatsServer, valkey_server: ValkeyServer) -> None:
    urls = {"nats_url": nats_server.url, "redis_url": valkey_server.url}
    asyncio.run(_seed(store_settings, **urls))
    before = asyncio.run(_inventory(store_settings, **urls))

    dry = _cli(ENV, "--dry-run", settings=store_settings, **urls)
    assert dry.returncode == 0, dry.stderr
    assert "Dry run: 8 object(s), 3 stream(s), 1 Redis key(s) would be deleted." in dry.stdout
    assert asyncio.run(_inventory(store_settings, **urls)) == before

    done = _cli(ENV, settings=store_settings, **urls)
    assert done.returncode == 0, done.stderr
    objects, streams, keys = asyncio.run(_inventory(store_settings, **urls))
    assert objects and all(f"/{OTHER}/" in k for k in objects)
    assert len(objects) == 8
    assert streams == sorted([names.stream_name(OTHER, "kalshi", "raw"), f"KV_{names.kv_bucket(OTHER, 'offsets')}"])
    assert keys == [names.redis_key(OTHER, "kalshi", "price", "A.B")]

    again = _cli(ENV, "--dry-run", settings=store_settings, **urls)
    assert "Dry run: 0 object(s), 0 stream(s), 0 Redis key(s)" in again.stdout


def test_teardown_one_date(store_settings: Settings, nats_server: NatsServer, valkey_server: ValkeyServer) -> None:
    urls = {"nats_url": nats_server.url, "redis_url": valkey_server.url}
    asyncio.run(_seed(store_settings, **urls))
    _o, streams_before, keys_before = asyncio.run(_inventory(store_settings, **urls))
    done = _cli(ENV, "--date", D1.isoformat(), settings=store_settings, **urls)
    assert done.returncode == 0, done.stderr
    objects, streams, keys = asyncio.run(_inventory(store_settings, **urls))
    day1 = f"/{names.date_path(D1)}/"
    gone = [k for k in objects if f"/{ENV}/" in k and day1 in k]
    assert gone == []
    assert len([k for k in objects if f"/{ENV}/" in k]) == 4  # D2 untouched
    assert len([k for k in objects if f"/{OTHER}/" in k]) == 8
    assert (streams, keys) == (streams_before, keys_before)


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    settings = Settings(store_url=f"file://{tmp_path}")
    out = _cli("Bad_Env", settings=settings, nats_url="nats://127.0.0.1:1", redis_url="redis://127.0.0.1:1")
    assert out.returncode == 2 and out.stderr.startswith("ssmd: error: invalid environment name 'Bad_Env'")
    out = _cli(ENV, "--date", "2025-13-01", settings=settings, nats_url="nats://x:1", redis_url="redis://x:1")
    assert out.returncode == 2 and "invalid date '2025-13-01'" in out.stderr
    out = _cli(ENV, settings=settings, nats_url="nats://127.0.0.1:1", redis_url="redis://127.0.0.1:1")
    assert out.returncode == 2
    assert out.stderr.startswith("ssmd: error: cannot reach NATS at nats://127.0.0.1:1")
    assert len(out.stderr.strip().splitlines()) == 1
