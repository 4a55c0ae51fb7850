"""``ssmd demo``: run ssmd on its embedded default until Ctrl-C.

Today it starts the embedded stack (nats-server with JetStream, valkey-server) and the file object
store; later issues grow it into the whole pipeline (simulator, worker, gateway) on that stack.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ssmd import settings as settings_mod
from ssmd.commands.signals import wait_for_stop

HELP = "run ssmd on its embedded default (local NATS, Valkey, file store) until Ctrl-C"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    settings_mod.add_arguments(parser, only=["env", "store_url", "data_dir", "log_level"])


def run(args: argparse.Namespace) -> int:
    from ssmd.devstack import DevStack
    from ssmd.store import open_store

    settings = settings_mod.from_args(args)
    with DevStack(Path(settings.data_dir)) as stack:
        asyncio.run(_check_stack(stack.nats.url, stack.valkey.url))
        store = open_store(settings)
        print(f"ssmd demo (env {settings.env})")
        print(f"  nats:  {stack.nats.url}")
        print(f"  redis: {stack.valkey.url}")
        print(f"  store: {store.url}")
        print("Ctrl-C stops the demo.", flush=True)
        wait_for_stop()
        print("stopping...", file=sys.stderr, flush=True)
    return 0


async def _check_stack(nats_url: str, redis_url: str) -> None:
    """Prove the servers work end to end: a JetStream account lookup and a Redis PING."""
    import nats
    import redis.asyncio as aioredis

    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().account_info()
    finally:
        await nc.close()
    client = aioredis.from_url(redis_url)
    try:
        await client.ping()
    finally:
        await client.aclose()
