"""``ssmd sim``: run the Kalshi exchange simulator (WebSocket + REST market data on one port).

On start it prints, one per line and ready to ``export``, the settings a client needs::

    SSMD_KALSHI_WS_URL=ws://127.0.0.1:PORT/trade-api/ws/v2
    SSMD_KALSHI_REST_URL=http://127.0.0.1:PORT/trade-api/v2
    SSMD_KALSHI_KEY_ID=<uuid>                 (only when it generated a key pair)
    SSMD_KALSHI_PRIVATE_KEY=<path to PEM>     (idem; mode 0600)

and runs until SIGINT/SIGTERM, then closes every connection (1001) and exits 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ssmd.errors import ConfigError

if TYPE_CHECKING:
    from ssmd.sim.config import SimConfig

HELP = "run the Kalshi exchange simulator (WebSocket + REST market data, faults, ground truth)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markets", type=int, default=20, help="markets to create (default 20)")
    parser.add_argument("--rate", type=float, default=100.0,
                        help="messages per second across all markets; 0 = frozen books (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the market model (default 0)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port for WebSocket and REST; 0 picks a free one")
    parser.add_argument("--fault", action="append", default=[], metavar="NAME[=VALUE]",
                        help="standing fault, repeatable: drop_seq=P, duplicate=P, reorder=P, delay=S, "
                             "stop_pings, busy_skips_pings, empty_pongs, close_abrupt=S, close_frame=S, refuse=S, "
                             "reject401=P, reject400=P, error25=P, overflow_bytes=N, empty_snapshot=P, "
                             "subpenny=FRACTION (P: probability, S: seconds)")
    parser.add_argument("--legacy-format", action="store_true",
                        help="integer-cents wire format of recordings made before 2026-03-12")
    parser.add_argument("--api-key-id", action="append", default=[], metavar="ID",
                        help="register a client API key id (repeatable, each with --public-key)")
    parser.add_argument("--public-key", action="append", default=[], metavar="PATH", type=Path,
                        help="PEM public key (or private key) of the matching --api-key-id")
    parser.add_argument("--private-key-out", type=Path, metavar="PATH",
                        help="where to write the generated private key (default: a new temp directory)")
    parser.add_argument("--record", type=Path, metavar="DIR",
                        help="dump ground truth (frames sent, books after every change) as JSONL in DIR")
    parser.add_argument("--repeat-subscribe-error", action="store_true",
                        help="older servers' error 6 on a repeated subscribe instead of merging markets")
    parser.add_argument("--allow-unauthenticated", action="store_true",
                        help="late-2025 mode: unsigned WebSocket upgrades may use public channels")
    parser.add_argument("--heartbeat", type=float, default=10.0, metavar="SECONDS",
                        help="interval of heartbeat pings (default 10)")


def build_config(args: argparse.Namespace) -> SimConfig:
    """The :class:`SimConfig` of parsed arguments; ``ConfigError`` names the bad one."""
    from ssmd.kalshi.auth import KeyError_, load_public_key
    from ssmd.sim.config import FaultConfig, SimConfig

    if len(args.api_key_id) != len(args.public_key):
        msg = (f"--api-key-id and --public-key come in pairs: got {len(args.api_key_id)} key id(s) and "
               f"{len(args.public_key)} public key(s)")
        raise ConfigError(msg)
    keys = {}
    for key_id, path in zip(args.api_key_id, args.public_key, strict=True):
        try:
            keys[key_id] = load_public_key(path)
        except OSError as e:
            msg = f"--public-key {path}: {e.strerror}"
            raise ConfigError(msg) from e
        except KeyError_ as e:
            msg = f"--public-key {path}: {e}"
            raise ConfigError(msg) from e
    config = SimConfig(
        markets=args.markets, rate=args.rate, seed=args.seed, host=args.host, port=args.port,
        legacy_format=args.legacy_format, keys=keys, faults=FaultConfig.parse(args.fault),
        record_dir=args.record, heartbeat_s=args.heartbeat, allow_unauthenticated=args.allow_unauthenticated,
        repeat_subscribe_error=args.repeat_subscribe_error,
    )
    config.validate()
    return config


def run(args: argparse.Namespace) -> int:
    import asyncio
    import tempfile

    config = build_config(args)
    key_path = args.private_key_out
    if not config.keys and key_path is None:
        key_path = Path(tempfile.mkdtemp(prefix="ssmd-sim-")) / "kalshi-sim-key.pem"
    asyncio.run(_serve(config, key_path))
    return 0


async def _serve(config: SimConfig, key_path: Path | None) -> None:
    import asyncio
    import signal
    import sys

    from ssmd.sim.simulator import Simulator

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    main = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and main is not None:
            main.cancel()  # a second signal: stop waiting for a clean shutdown
        stop.set()

    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    try:
        async with Simulator(config, key_path=key_path) as sim:
            lines = [f"SSMD_KALSHI_WS_URL={sim.ws_url}", f"SSMD_KALSHI_REST_URL={sim.rest_url}"]
            if sim.client_key is not None:
                lines += [f"SSMD_KALSHI_KEY_ID={sim.client_key.key_id}",
                          f"SSMD_KALSHI_PRIVATE_KEY={sim.client_key.path}"]
            print("\n".join(lines), flush=True)
            print(f"ssmd sim: {config.markets} markets, {config.rate:g} msg/s, seed {config.seed}; "
                  "SIGINT/SIGTERM stops", file=sys.stderr, flush=True)
            await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
