"""The ``ssmd`` command line: one subcommand per role, each in its own module.

Subcommands are looked up in :data:`COMMANDS` (name -> module path) and imported only to build the
parser; each module defines ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int`` and imports
its heavy dependencies inside ``run``. Subcommands that are named but not built yet are listed in
:data:`PENDING` with the issue that builds them: they show in ``--help`` and exit non-zero.

Every :class:`~ssmd.errors.SsmdError` (a bad setting or argument, an unreachable server) is printed
as one ``ssmd: error: ...`` line with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ssmd import __version__
from ssmd.errors import NotBuiltError, SsmdError

COMMANDS: dict[str, str] = {
    "archive": "ssmd.commands.archive",
    "sim": "ssmd.commands.sim",
    "demo": "ssmd.commands.demo",
    "dev": "ssmd.commands.dev",
    "env": "ssmd.commands.env",
    "worker": "ssmd.commands.worker",
}

PENDING: dict[str, tuple[str, int | None]] = {
    "gateway": ("serve clients: WebSocket stream, REST and the stats page", None),
    "replay": ("replay recorded history from JetStream", None),
}


def _pending_runner(name: str, issue: int | None) -> object:
    def run(args: argparse.Namespace) -> int:
        where = f" (see issue #{issue})" if issue is not None else ""
        msg = f"'ssmd {name}' is not built yet{where}"
        raise NotBuiltError(msg)

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssmd",
        description="ssmd: lossless, auditable Kalshi market data on NATS JetStream, S3 and Redis.",
    )
    parser.add_argument("--version", action="version", version=f"ssmd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    entries: list[tuple[str, str]] = [(n, m) for n, m in COMMANDS.items()]
    entries += [(n, "") for n in PENDING if n not in COMMANDS]
    for name, module_path in sorted(entries):
        if module_path:
            module = importlib.import_module(module_path)
            cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
            module.add_arguments(cmd)
            cmd.set_defaults(run=module.run)
        else:
            help_, issue = PENDING[name]
            cmd = sub.add_parser(name, help=f"{help_} [not built yet]", description=help_)
            cmd.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            cmd.set_defaults(run=_pending_runner(name, issue))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(args, "log_level", None) or "INFO",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.run(args)
    except SsmdError as e:
        print(f"ssmd: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
