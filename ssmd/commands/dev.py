"""``ssmd dev up``: start the embedded stack (nats-server with JetStream, valkey-server), print its URLs.

The servers keep their data under ``--data-dir`` (default ``./.ssmd``) and stop on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ssmd import settings as settings_mod
from ssmd.commands.signals import wait_for_stop

HELP = "development helpers: 'ssmd dev up' starts the embedded NATS and Valkey servers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dev_command", metavar="ACTION", required=True)
    up = sub.add_parser("up", help="start nats-server (JetStream) and valkey-server; Ctrl-C stops them")
    settings_mod.add_arguments(up, only=["data_dir", "log_level"])


def run(args: argparse.Namespace) -> int:
    from ssmd.devstack import DevStack

    settings = settings_mod.from_args(args)
    with DevStack(Path(settings.data_dir)) as stack:
        print(f"nats:  {stack.nats.url}   (JetStream store: {stack.nats.data_dir / 'jetstream'})")
        print(f"redis: {stack.valkey.url}")
        print("use them from another shell with:")
        print(f"  export SSMD_NATS_URL={stack.nats.url} SSMD_REDIS_URL={stack.valkey.url}")
        print("Ctrl-C stops the servers.", flush=True)
        wait_for_stop()
        print("stopping...", file=sys.stderr, flush=True)
    return 0
