"""Benchmark: frames/s one simulator process emits to one client subscribed to every market.

The client (this process, plain ``websockets``) subscribes ``orderbook_delta`` + ``trade`` + ``ticker``
for all markets and counts frames for a fixed time. The baseline, measured in the same run, is a bare
``websockets`` server process writing a fixed list of pre-built frames as fast as it can (batched): the
ceiling of this client on this machine. The simulator's figure is reported beside it and as a ratio.

    python bench/bench_sim.py [--markets 1000] [--seconds 5] [--profile]

``--profile`` runs the simulator process under cProfile and prints where its time goes; ``--py-spy BIN``
samples it with py-spy instead (no slowdown) and prints self/inclusive time per function.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIM_PROCESS = """
import asyncio, cProfile, pstats, signal, sys
from ssmd.sim import Simulator, SimConfig

async def main(markets, profile, rate):
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    prof = cProfile.Profile() if profile else None
    async with Simulator(SimConfig(markets=markets, rate=rate, seed=1, heartbeat_s=10)) as sim:
        print(sim.ws_url, sim.client_key.key_id, flush=True)
        sys.stdout.write(sim.client_key.private_key.private_bytes(
            __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).Encoding.PEM,
            __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).PrivateFormat.PKCS8,
            __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).NoEncryption(),
        ).decode() + "END\\n")
        sys.stdout.flush()
        if prof: prof.enable()
        await stop.wait()
        if prof:
            prof.disable()
            pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(18)

asyncio.run(main(int(sys.argv[1]), sys.argv[2] == "1", float(sys.argv[3])))
"""

BASELINE_PROCESS = """
import asyncio, signal, sys
from websockets.asyncio.server import serve
from ssmd.sim.model import MarketModel

outs = []
model = MarketModel(markets=int(sys.argv[1]), seed=1)
while len(outs) < 200_000:
    outs.extend(model.step())
frames = [f'{{"type":"{o.type}","sid":1,"seq":{i},"msg":{o.body}}}'.encode() for i, o in enumerate(outs)]

async def handler(ws):
    await ws.recv()
    try:
        while True:
            for i in range(0, len(frames), 512):
                async with ws.send_context():
                    for f in frames[i:i + 512]:
                        ws.protocol.send_text(f)
                    ws.transport.write(b"".join(ws.protocol.data_to_send()))
    except Exception:
        pass

async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with serve(handler, "127.0.0.1", 0, ping_interval=None, compression=None) as server:
        print(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/", flush=True)
        await stop.wait()

asyncio.run(main())
"""


def start(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, env=env)


async def count_frames(url: str, headers: dict[str, str], subscribe: list[dict[str, object]],
                       warmup: float, seconds: float) -> float:
    async with connect(url, additional_headers=headers, max_size=None, compression=None,
                       ping_interval=None) as ws:
        for command in subscribe:
            await ws.send(json.dumps(command))
        deadline = time.perf_counter() + warmup
        while time.perf_counter() < deadline:
            await ws.recv()
        n, t0 = 0, time.perf_counter()
        end = t0 + seconds
        while True:
            await ws.recv()
            n += 1
            if n % 1024 == 0 and time.perf_counter() >= end:
                break
        return n / (time.perf_counter() - t0)


def py_spy_summary(collapsed: Path, top: int = 15) -> str:
    """Self and inclusive time per function from py-spy's collapsed stacks."""
    self_time: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        n = int(samples)
        total += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]
        self_time[frames[-1]] = self_time.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
    rows = [f"py-spy: {total} samples of the simulator process", "  self%  incl%  function"]
    for name, n in sorted(self_time.items(), key=lambda kv: -kv[1])[:top]:
        rows.append(f"  {100 * n / total:5.1f}  {100 * inclusive[name] / total:5.1f}  {name}")
    return "\n".join(rows)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_sim(markets: int, seconds: float, profile: bool, py_spy: str | None = None,
                    rate: float = 1e9) -> tuple[float, float]:
    """(frames/s received, share of one core the simulator process used meanwhile)."""
    from ssmd.kalshi.auth import auth_headers, load_private_key
    from ssmd.kalshi.protocol import WS_PATH
    from ssmd.sim.model import MarketModel

    proc = start(SIM_PROCESS, str(markets), "1" if profile else "0", str(rate))
    try:
        assert proc.stdout is not None
        url, key_id = proc.stdout.readline().split()
        pem = "".join(iter(proc.stdout.readline, "END\n"))
        headers = auth_headers(key_id, load_private_key(pem.encode()), "GET", WS_PATH)
        tickers = list(MarketModel(markets=markets, seed=1).markets)
        subscribe: list[dict[str, object]] = [
            {"id": 1, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": tickers}},
            {"id": 2, "cmd": "subscribe", "params": {"channels": ["trade", "ticker"]}},
        ]
        spy = None
        if py_spy:
            out = Path(f"/tmp/bench_sim_{proc.pid}.txt")
            spy = await asyncio.create_subprocess_exec(
                py_spy, "record", "--pid", str(proc.pid), "--duration", str(int(seconds) + 1), "--format", "raw",
                "--rate", "250", "-o", str(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        received = await count_frames(url, headers, subscribe, 1.0, seconds)
        cpu = (cpu_seconds(proc.pid) - cpu0) / (time.perf_counter() - t0)
        if spy is not None:
            await spy.wait()
            print(py_spy_summary(out))
        return received, cpu
    finally:
        proc.terminate()
        proc.wait(30)


async def bench_baseline(markets: int, seconds: float) -> float:
    proc = start(BASELINE_PROCESS, str(markets))
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        return await count_frames(url, {}, [{"id": 1, "cmd": "go"}], 1.0, seconds)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markets", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--paced", type=float, default=20_000.0,
                        help="also measure the simulator's CPU share at this rate (default 20000 msg/s)")
    parser.add_argument("--profile", action="store_true", help="cProfile the simulator process (slows it)")
    parser.add_argument("--py-spy", metavar="BIN", help="sample the simulator process with this py-spy binary")
    args = parser.parse_args()
    baseline = asyncio.run(bench_baseline(args.markets, args.seconds))
    sim, cpu = asyncio.run(bench_sim(args.markets, args.seconds, args.profile, args.py_spy))
    paced, paced_cpu = asyncio.run(bench_sim(args.markets, args.seconds, False, None, args.paced))
    print(f"baseline (bare websockets server, pre-built frames): {baseline:10,.0f} frames/s")
    print(f"simulator ({args.markets} markets, all channels), flat out: {sim:10,.0f} frames/s "
          f"({cpu:.0%} of a core)")
    print(f"ratio simulator / baseline: {sim / baseline:.2f}")
    print(f"simulator paced at {args.paced:,.0f} msg/s: {paced:10,.0f} frames/s received, "
          f"{paced_cpu:.0%} of a core")


if __name__ == "__main__":
    main()
