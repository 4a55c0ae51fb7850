"""``ssmd env teardown ENV [--date YYYY-MM-DD] [--dry-run]``: delete an environment's data by prefix."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ssmd import names
from ssmd import settings as settings_mod
from ssmd.commands import argtypes
from ssmd.errors import ConfigError, InvalidNameError

HELP = "manage environments: 'ssmd env teardown ENV' deletes an environment's data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="env_command", metavar="ACTION", required=True)
    td = sub.add_parser(
        "teardown",
        help="delete ENV's archive objects, JetStream streams and Redis keys",
        description="Delete everything environment ENV owns: ssmd-raw/ENV/ and ssmd-normalized/ENV/ objects, "
        "streams ENV_* (and KV buckets), Redis keys ENV:*. With --date, only that day's archive objects.",
    )
    td.add_argument("target", metavar="ENV", help="the environment to tear down")
    td.add_argument("--date", type=argtypes.date, help="only this day's archive objects (YYYY-MM-DD)")
    td.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
    settings_mod.add_arguments(
        td,
        only=[
            "nats_url",
            "redis_url",
            "store_url",
            "s3_endpoint_url",
            "s3_region",
            "s3_access_key_id",
            "s3_secret_access_key",
            "log_level",
        ],
    )


def run(args: argparse.Namespace) -> int:
    try:
        names.validate_env(args.target)
    except InvalidNameError as e:
        raise ConfigError(str(e)) from None
    settings = settings_mod.from_args(args)
    return asyncio.run(_teardown(args, settings))


async def _teardown(args: argparse.Namespace, settings: settings_mod.Settings) -> int:
    from ssmd import teardown
    from ssmd.store import open_store

    env, date = args.target, args.date
    async with open_store(settings) as store:
        nc = await _connect_nats(settings.nats_url) if date is None else None
        redis = _connect_redis(settings.redis_url) if date is None else None
        try:
            plan = await teardown.plan(env, date, store=store, nc=nc, redis=redis)
            _print_plan(plan, settings, dry_run=args.dry_run)
            if not args.dry_run:
                await teardown.execute(plan, store=store, nc=nc, redis=redis)
                print(f"Environment {env}{' date ' + str(date) if date else ''} torn down: {plan.summary()}.")
        finally:
            if nc is not None:
                await nc.close()
            if redis is not None:
                await redis.aclose()
    return 0


def _print_plan(plan: Any, settings: settings_mod.Settings, *, dry_run: bool) -> None:
    verb = "Would delete" if dry_run else "Deleting"
    if plan.date is None:
        for prefix in names.env_prefixes(plan.env):
            print(f"  {verb} objects under {prefix} in {settings.store_url}")
    for key in plan.objects:
        print(f"    {key}")
    for stream in plan.streams:
        print(f"  {verb} NATS stream: {stream}")
    if plan.redis_keys:
        print(f"  {verb} Redis keys: {names.redis_pattern(plan.env)} ({len(plan.redis_keys)} keys)")
    if plan.date is not None:
        print("  (with --date, streams and Redis keys are kept: they hold live state, not days)")
    if dry_run:
        print(f"Dry run: {plan.summary()} would be deleted.")


async def _connect_nats(url: str | None) -> Any:
    if url is None:
        return None  # nothing configured: no streams to find
    from ssmd.natsconn import connect

    return await connect(url)


def _connect_redis(url: str | None) -> Any:
    if url is None:
        return None
    import redis.asyncio as aioredis

    return aioredis.from_url(url, socket_connect_timeout=3)
