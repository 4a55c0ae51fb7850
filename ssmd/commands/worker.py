"""``ssmd worker``: run ssmd's stream agents (all, or ``--agents a,b``) until SIGTERM/SIGINT.

Configured only through settings (flags or ``SSMD_*``). Any number of workers with the same settings
share the partitions of every topic. Without ``--nats-url``/``SSMD_NATS_URL`` the worker starts the
embedded nats-server and valkey-server under ``--data-dir`` (one-machine mode) and prints their URLs.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from ssmd import gcpause
from ssmd import settings as settings_mod
from ssmd.errors import ConfigError

HELP = "run ssmd's stream agents (connector, normalizer, ...) until SIGTERM"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ssmd.app import AGENTS, DEFAULT_AGENTS

    parser.add_argument(
        "--agents",
        default=",".join(DEFAULT_AGENTS),
        help=f"comma-separated agents to run (default: {','.join(DEFAULT_AGENTS)}; "
        "the archivers run in workers of their own: --agents archiver, --agents raw_archiver; "
        f"all: {','.join(AGENTS)})",
    )
    settings_mod.add_arguments(parser)


def parse_agents(text: str) -> tuple[str, ...]:
    from ssmd.app import AGENTS

    chosen = tuple(a.strip() for a in text.split(",") if a.strip())
    unknown = [a for a in chosen if a not in AGENTS]
    if not chosen or unknown:
        msg = f"invalid --agents {text!r}: choose from {', '.join(AGENTS)}"
        raise ConfigError(msg)
    return chosen


def run(args: argparse.Namespace) -> int:
    settings = settings_mod.from_args(args)
    agents = parse_agents(args.agents)
    from ssmd.app import group_of

    group_of(agents)
    if "connector" in agents:
        settings.require("kalshi_key_id", "kalshi_private_key")
    stack = None
    if settings.nats_url is None:
        from ssmd.devstack import DevStack

        stack = DevStack(Path(settings.data_dir)).start()
        settings = dataclasses.replace(
            settings, nats_url=stack.nats.url, redis_url=settings.redis_url or stack.valkey.url
        )
        print(f"embedded servers: nats {stack.nats.url}, redis {stack.valkey.url}", flush=True)
    try:
        return _run_worker(settings, agents)
    finally:
        if stack is not None:
            stack.stop()


def _run_worker(settings: settings_mod.Settings, agents: tuple[str, ...]) -> int:
    import faust

    from ssmd.app import create_app

    class Worker(faust.Worker):
        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            frozen = gcpause.settle()
            logging.getLogger("ssmd").info("started; %d startup objects frozen out of garbage collection", frozen)

    ctx = create_app(settings, agents)
    worker = Worker(ctx.app, loglevel=settings.log_level.lower(), quiet=True, redirect_stdouts=False)
    # No terminal spinner: at WARNING and above Faust would set the root logger to DEBUG to spin it on
    # every record, so each of its debug calls on the hot path built a record (~3% of a busy worker's CPU),
    # and the spinner's escape codes went into the log.
    worker.spinner = None
    logging.getLogger("ssmd").info("worker %s: agents %s, env %s", ctx.app.conf.id, ",".join(agents), settings.env)
    try:
        worker.execute_from_commandline()
    except SystemExit as e:
        return int(e.code or 0)
    return 0  # pragma: no cover - execute_from_commandline always raises SystemExit
