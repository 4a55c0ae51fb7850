"""``ssmd demo``: the whole pipeline on the embedded default, until Ctrl-C.

Starts the embedded servers (nats-server with JetStream, valkey-server), the exchange simulator
(``ssmd sim``) and three workers: the pipeline (connector, normalizer, snapshotter, activity), the
normalized archiver and the raw archiver, wired together only through ``SSMD_*`` settings, exactly as
separate machines would be. Every few seconds it prints what the pipeline holds:
JetStream streams and message counts, and the Redis snapshot of a few markets. Ctrl-C stops the
worker (gracefully: it uploads what is pending), the simulator, then the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ssmd import settings as settings_mod
from ssmd.commands.signals import wait_for_stop
from ssmd.devstack import free_port

HELP = "run the whole pipeline on its embedded default (NATS, Valkey, file store, simulator) until Ctrl-C"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markets", type=int, default=20, help="simulated markets (default 20)")
    parser.add_argument("--rate", type=float, default=200.0, help="simulated messages per second (default 200)")
    parser.add_argument("--report-every", type=float, default=5.0, help="seconds between status lines (default 5)")
    settings_mod.add_arguments(parser, only=["env", "store_url", "data_dir", "partitions", "log_level"])


def run(args: argparse.Namespace) -> int:
    from ssmd.devstack import DevStack

    settings = settings_mod.from_args(args)
    data = Path(settings.data_dir)
    with DevStack(data) as stack:
        env = {**os.environ, "SSMD_ENV": settings.env, "SSMD_NATS_URL": stack.nats.url,
               "SSMD_REDIS_URL": stack.valkey.url, "SSMD_STORE_URL": settings.store_url,
               "SSMD_PARTITIONS": str(settings.partitions), "SSMD_DATA_DIR": str(data / "worker"),
               "SSMD_LOG_LEVEL": settings.log_level, "SSMD_WEB_PORT": str(free_port())}  # fmt: skip
        sim = _start_sim(args, data, env)
        workers: list[subprocess.Popen[bytes]] = []
        try:
            env.update(_sim_settings(sim, data))
            worker = _start_worker(env, data, "worker", None)
            workers = [worker, _start_worker(env, data, "archiver", "archiver"),
                       _start_worker(env, data, "raw-archiver", "raw_archiver")]  # fmt: skip
            print(f"ssmd demo (env {settings.env}): simulator {env['SSMD_KALSHI_WS_URL']}")
            print(f"  nats:  {stack.nats.url}\n  redis: {stack.valkey.url}\n  store: {settings.store_url}")
            print(f"  logs:  {data}/{{worker,archiver,raw-archiver,sim}}.log")
            print(f"  stats: http://127.0.0.1:{env['SSMD_WEB_PORT']}/ (the worker's Faust web views)")
            print("Ctrl-C stops the demo.", flush=True)
            _report_until_stopped(args.report_every, env, workers, settings.env)
            if any(w.poll() is not None for w in workers):
                return 1
        finally:
            print("stopping...", file=sys.stderr, flush=True)
            for proc in [*workers, sim]:
                if proc is not None and proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
    return 0


def _start_worker(env: dict[str, str], data: Path, name: str, agents: str | None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "ssmd.cli", "worker"] + (["--agents", agents] if agents else [])
    env = {**env, "SSMD_DATA_DIR": str(data / name), "SSMD_ARCHIVE_INTERVAL": "10"}
    if agents:
        env["SSMD_WEB_PORT"] = str(free_port())
    return subprocess.Popen(cmd, env=env, stdout=(data / f"{name}.log").open("ab"), stderr=subprocess.STDOUT)


def _start_sim(args: argparse.Namespace, data: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    data.mkdir(parents=True, exist_ok=True)
    out = data / "sim.out"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "ssmd.cli", "sim", "--port", "0", "--markets", str(args.markets),
           "--rate", str(args.rate), "--private-key-out", str(data / "sim-key.pem")]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=out.open("wb"), stderr=(data / "sim.log").open("ab"))


def _sim_settings(sim: subprocess.Popen[bytes], data: Path) -> dict[str, str]:
    """The ``SSMD_KALSHI_*`` lines the simulator prints on start."""
    out = data / "sim.out"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if sim.poll() is not None:
            msg = f"the simulator exited with status {sim.returncode}; see {out.parent / 'sim.log'}"
            raise SystemExit(msg)
        lines: dict[str, str] = {}
        for line in out.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.startswith("SSMD_"):
                lines[key] = value
        if "SSMD_KALSHI_PRIVATE_KEY" in lines:
            return lines
        time.sleep(0.1)
    msg = "the simulator did not start within 30 s"
    raise SystemExit(msg)


def _report_until_stopped(
    every: float, env: dict[str, str], workers: list[subprocess.Popen[bytes]], ssmd_env: str
) -> None:
    import threading

    stop = threading.Event()

    def report() -> None:
        while not stop.wait(every):
            dead = [w for w in workers if w.poll() is not None]
            if dead:
                print(f"a worker exited with status {dead[0].returncode}; see its log", flush=True)
                os.kill(os.getpid(), signal.SIGTERM)  # end the demo: wait_for_stop() returns
                return
            try:
                print(asyncio.run(_status(env, ssmd_env)), flush=True)
            except Exception as e:  # a status line is best effort; the demo goes on
                print(f"(status unavailable: {e})", flush=True)

    thread = threading.Thread(target=report, daemon=True)
    thread.start()
    try:
        wait_for_stop()
    finally:
        stop.set()


async def _status(env: dict[str, str], ssmd_env: str) -> str:
    import nats
    import redis.asyncio as aioredis

    nc = await nats.connect(env["SSMD_NATS_URL"])
    try:
        streams = await nc.jetstream().streams_info()
        counts = {str(s.config.name): s.state.messages for s in streams if "changelog" not in str(s.config.name)}
    finally:
        await nc.close()
    client: Any = aioredis.from_url(env["SSMD_REDIS_URL"], decode_responses=True)
    try:
        tickers = await client.zrevrange(f"{ssmd_env}:kalshi:index:markets", 0, 2)
        tops = []
        for t in tickers:
            top = await client.hgetall(f"{ssmd_env}:kalshi:top:{t}")
            tops.append(f"{t} {top.get('bid') or '-'}/{top.get('ask') or '-'}")
        n_markets = await client.zcard(f"{ssmd_env}:kalshi:index:markets")
    finally:
        await client.aclose()
    stream_text = ", ".join(f"{k.split('_', 1)[-1][:32]}={v}" for k, v in sorted(counts.items()))
    return f"[{time.strftime('%H:%M:%S')}] streams: {stream_text} | {n_markets} markets in Redis; " + "; ".join(tops)
