"""Benchmark of the capture pipeline: simulator -> connector -> normalizer, at rising rates (issue 5).

Three processes besides this one, so none shares another's event loop: a nats-server
(``ssmd.devstack``), the exchange simulator (``Simulator``, its rate changed live over stdin) and one
``ssmd worker --agents connector,normalizer``. For each offered rate, after a warm-up, a window of
``--seconds`` reports:

- offered: frames the simulator wrote to the worker's connection per second;
- raw, normalized: frames stored on the raw stream and records stored on the normalized stream per
  second (JetStream sequence ranges read in the window, then decoded);
- worker CPU: user + system time of the worker process over the window (1.00 = one core);
- latency p50/p99, **simulator send to normalized record stored**: the JetStream store time of the
  normalized ``Batch`` message minus the record's ``exchange_ns``. The simulator stamps ``ts_ms`` on
  deltas and trades with its clock when it generates a batch, just before writing it to the socket,
  so this is send -> stored (same host, same clock); ``ts_ms`` is truncated to the millisecond, which
  adds 0-1 ms (0.5 on average). Snapshots carry no exchange time and are left out;
- internal p50/p99: store time minus ``received_ns`` (the worker's own share, without the socket);
- raw p99: the raw ``Batch`` message's store time minus each frame's ``received_ns`` (capture's share);
- stage p99 (``stg99``): a record's normalized ``Batch`` store time minus its frame's raw ``Batch`` store
  time (the normalizer's share: delivery from the raw stream, normalizing, the normalized publish);
- public p99: arrival in this process of the per-ticker core-NATS records
  (``{env}.kalshi.orderbook|trade.{ticker}``, a sample of tickers) minus ``exchange_ns``;
- drain: seconds the normalized stream kept growing after the simulator stopped (backlog).

Baselines, in the same run:

- **transfer** (the one ssmd's rate is compared with): a bare client doing the same transfer, simulator
  to JetStream, one frame per message. It is websockets (``recv(decode=False)``: the frame's bytes, no
  decode) and nats-py ``js.publish_async`` to a file-backed stream, subscribed to the same channels and
  following new markets from ``market_lifecycle_v2`` (``add_markets``), as any client of the full feed
  must. It runs at the same rates against the same simulator, once before the worker starts and once
  after it stops, and is measured like the worker: frames stored per second, CPU, p99 from simulator
  send to stored. ``r_xfer`` is normalized / transfer at each rate;
- **publish loop**: a bare nats-py process publishing pre-built frames of the same kind from the
  simulator's model with ``js.publish_async`` (and core ``publish``), interleaved with the rates while
  the simulator is paused and the worker idle. It reads no socket and has the CPU the simulator would
  take, so it is the ceiling of one publishing Python process here, not a transfer; ``r_pub`` is
  normalized / it.

At the highest sustainable rate (normalized >= 95% of offered and p99 < 50 ms; ``--profile-rate``
overrides) the worker is sampled with py-spy (``--nonblocking``) and the top frames printed.

    python bench/bench_pipeline.py                  # 2k..40k outputs/s (~1.5k..29k frames/s), 12 s each, profiled
    python bench/bench_pipeline.py --quick          # a few seconds, for a smoke run

The simulator's rate is in model outputs per second; about 73% of them are frames written to this
worker's connection (the rest are other channels' messages), so ``--rates 27000`` offers ~19.8k frames/s.

What bounds it (py-spy, 2-core VM shared by the worker, the simulator, nats-server and this process):

* One worker process does everything for every frame on one core: WebSocket read and envelope scan,
  sequence check, raw batch encode and publish (capture, ~28% of the samples at saturation), parse, book,
  record build, normalized batch encode and publish, public per-ticker publishes (normalizer, ~45%; the
  raw batches it consumes from the capture beside it are not decoded again, see
  ``ssmd/capture/handoff.py``), socket writes (~7%) and the event loop (~11%). That is ~38 us of CPU per
  frame at 23k frames/s in a quiet run; the simulator (~0.5-0.7 core at that rate) and nats-server take
  the other core, and when the machine is busy the simulator's share is what moves the figure most.
* Per Faust event the pipeline pays ~1 ms of CPU (Faust on both sides, the socket writes it triggers,
  the wakeups). Below saturation every partition's batch goes out at the batcher's ``max_linger``
  (20 ms) at the latest, so with 8 partitions a busy worker sends ~400 events/s; as the worker becomes
  CPU-bound (``ssmd/capture/cpuload.py``: from 0.75 to 0.9 of a core) batches may wait longer, up to 50
  ms, and grow 2-4x. Below ~3k frames/s most of the worker's CPU is per-event cost, not per-frame cost.
* Latency: a frame waits up to the batcher's bound for company, plus a raw publish round trip, the
  consumer's delivery, the normalizing and the normalized publish. The tail: checkpoints (each partition
  in turn, once a checkpoint interval: copy and write its touched tickers' state, then acknowledge its
  events), young-generation garbage collections (8-17 ms every 2-12 s, ``ssmd/gcpause.py``) and
  the machine: the ``steal`` column is the hypervisor's share of the CPU time in the window. p99 stays
  under 50 ms up to 11.7k frames/s in quiet runs (up to 5.9k in loaded ones).
* The baseline (bare nats-py ``publish_async`` of the same frames, one per message, nothing else) costs
  23-38 us of CPU per frame depending on the hour, so a ratio of 1.0 would need the whole pipeline to
  cost less per frame than that one call. More worker processes split the partitions (and with them the
  markets), which is the way to more frames per machine; that scaling is not measured here (two cores,
  already shared with the simulator and nats-server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ssmd import codec, names  # noqa: E402
from ssmd import records as r  # noqa: E402
from ssmd.devstack import NatsServer, free_port  # noqa: E402
from ssmd.transport import naming  # noqa: E402

ENV = "bench"
SEED = 1

SIM_PROCESS = """
import asyncio, sys
from pathlib import Path
from ssmd.sim import Simulator, SimConfig

async def main(markets, key_path):
    loop = asyncio.get_running_loop()
    async with Simulator(SimConfig(markets=markets, rate=0, seed=SEED, heartbeat_s=10), key_path=Path(key_path)) as sim:
        print(f"SSMD_KALSHI_WS_URL={sim.ws_url}")
        print(f"SSMD_KALSHI_REST_URL={sim.rest_url}")
        print(f"SSMD_KALSHI_KEY_ID={sim.client_key.key_id}")
        print(f"SSMD_KALSHI_PRIVATE_KEY={sim.client_key.path}")
        print("READY", flush=True)
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or line.startswith("quit"):
                return
            if line.startswith("rate "):
                sim.rate = float(line.split()[1])
            elif line.startswith("count"):
                written = sum(s.frames_written for s in sim.server.sessions())
                print(written, sim.produced, flush=True)

asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
""".replace("SEED", str(SEED))

BASELINE_PROCESS = """
import asyncio, sys, time
import nats
from nats.js.api import StreamConfig, StorageType
from ssmd.sim.model import MarketModel

async def main(url, markets, seconds):
    model = MarketModel(markets=markets, seed=SEED)
    frames = []
    while len(frames) < 100_000:
        for o in model.step():
            if o.type in ("orderbook_delta", "trade"):
                frames.append(f'{{"type":"{o.type}","sid":1,"seq":{len(frames) + 1},"msg":{o.body}}}'.encode())
    subjects = [f"benchbase.{i % 8}" for i in range(len(frames))]
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        await js.delete_stream("BENCHBASE")
    except Exception:
        pass
    await js.add_stream(StreamConfig(name="BENCHBASE", subjects=["benchbase.*"], storage=StorageType.FILE))
    out = []
    for mode in ("js", "core"):
        n, t0 = 0, time.perf_counter()
        end = t0 + seconds
        while True:
            for i in range(1000):
                k = (n + i) % len(frames)
                if mode == "js":
                    await js.publish_async(subjects[k], frames[k])
                else:
                    await nc.publish(subjects[k], frames[k])
            n += 1000
            if time.perf_counter() >= end:
                break
        if mode == "js":
            await js.publish_async_completed()
        else:
            await nc.flush()
        out.append(n / (time.perf_counter() - t0))
        await js.purge_stream("BENCHBASE")
    await js.delete_stream("BENCHBASE")
    await nc.close()
    print(*out, flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
""".replace("SEED", str(SEED))


TRANSFER_PROCESS = """
import asyncio, json, sys
import nats, websockets
from nats.js.api import StreamConfig, StorageType
from ssmd.connector.rest import RestClient
from ssmd.kalshi.auth import auth_headers, load_private_key
from ssmd.kalshi.protocol import WS_PATH

async def main(nats_url, ws_url, rest_url, key_id, key_path):
    key = load_private_key(key_path)
    async with RestClient(rest_url, key_id=key_id, private_key=key) as rest:
        tickers = sorted(m["ticker"] for m in await rest.markets(status="open"))
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        await js.delete_stream("BENCHXFER")
    except Exception:
        pass
    await js.add_stream(StreamConfig(name="BENCHXFER", subjects=["benchxfer"], storage=StorageType.FILE))
    markets = ",".join(f'"{t}"' for t in tickers)
    async with websockets.connect(ws_url, additional_headers=auth_headers(key_id, key, "GET", WS_PATH),
                                  max_size=None) as ws:
        for cid, channel in ((1, "orderbook_delta"), (2, "trade")):
            await ws.send(f'{{"id":{cid},"cmd":"subscribe","params":{{"channels":["{channel}"],'
                          f'"market_tickers":[{markets}]}}}}')
        await ws.send('{"id":3,"cmd":"subscribe","params":{"channels":["market_lifecycle_v2"]}}')
        print("READY", flush=True)
        sids, next_id = [], 4
        while True:  # text frames as their bytes: no decode and re-encode
            frame = await ws.recv(decode=False)
            await js.publish_async("benchxfer", frame)
            if b"market_lifecycle_v2" in frame or b'"subscribed"' in frame:
                # Following new markets, like any client of the full feed must.
                m = json.loads(frame)
                if m["type"] == "subscribed" and m["id"] in (1, 2):
                    sids.append(m["msg"]["sid"])
                elif m["type"] == "market_lifecycle_v2" and m["msg"]["event_type"] == "created":
                    for sid in sids:
                        await ws.send(json.dumps({"id": next_id, "cmd": "update_subscription", "params": {
                            "sids": [sid], "market_tickers": [m["msg"]["market_ticker"]], "action": "add_markets"}}))
                        next_id += 1

asyncio.run(main(*sys.argv[1:]))
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(steal, all) CPU ticks of the whole machine so far (Linux /proc/stat): time the hypervisor gave away."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


@dataclass
class Transfer:
    """The bare transfer client at one offered rate (``TRANSFER_PROCESS``)."""

    offered: float = 0.0
    stored: float = 0.0
    cpu: float = 0.0
    lat: list[float] = field(default_factory=list)  # ms, simulator send -> stored

    @property
    def sustainable(self) -> bool:
        return self.stored >= 0.95 * self.offered and pct(self.lat, 0.99) < 50


@dataclass
class Step:
    rate: float
    offered: float = 0.0
    raw: float = 0.0
    normalized: float = 0.0
    cpu: float = 0.0
    sim_cpu: float = 0.0
    nats_cpu: float = 0.0
    lat: list[float] = field(default_factory=list)  # ms, send -> stored
    internal: list[float] = field(default_factory=list)  # ms, received -> stored
    raw_lat: list[float] = field(default_factory=list)  # ms, received -> raw batch stored
    stage: list[float] = field(default_factory=list)  # ms, raw batch stored -> normalized batch stored
    public: list[float] = field(default_factory=list)  # ms, send -> public arrival
    drain: float = 0.0
    raw_batch: float = 0.0  # frames per raw batch message
    norm_batch: float = 0.0  # records per normalized batch message
    load: float = 0.0
    steal: float = 0.0  # share of the machine's CPU time taken by the hypervisor in the window
    baseline_js: float = 0.0
    baseline_core: float = 0.0
    transfer: list[Transfer] = field(default_factory=list)  # the bare transfer at this rate, before and after

    @property
    def sustainable(self) -> bool:
        return self.normalized >= 0.95 * self.offered and pct(self.lat, 0.99) < 50


class Simulator:
    """The simulator process, paced over stdin."""

    def __init__(self, markets: int, tmp: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-c", SIM_PROCESS, str(markets), str(tmp / "sim-key.pem")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        self.settings: dict[str, str] = {}
        for line in iter(self.proc.stdout.readline, "READY\n"):
            if not line:
                msg = "the simulator process exited before it was ready"
                raise RuntimeError(msg)
            key, _, value = line.strip().partition("=")
            self.settings[key] = value

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def rate(self, rate: float) -> None:
        self.send(f"rate {rate:g}")

    def written(self) -> int:
        """Frames written to client connections so far."""
        self.send("count")
        assert self.proc.stdout is not None
        return int(self.proc.stdout.readline().split()[0])

    def stop(self) -> None:
        self.send("quit")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(10)


def start_worker(nats_url: str, sim: Simulator, tmp: Path, log: Path,
                 extra: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, **sim.settings, "PYTHONPATH": str(ROOT), "SSMD_ENV": ENV, "SSMD_NATS_URL": nats_url,
           "SSMD_DATA_DIR": str(tmp / "worker"), "SSMD_WEB_PORT": str(free_port()), "SSMD_LOG_LEVEL": "WARNING",
           **extra}
    code = "import sys; from ssmd.cli import main; sys.exit(main())"
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", code, "worker", "--agents", "connector,normalizer"],
                                stdout=out, stderr=subprocess.STDOUT, env=env)


async def baseline(nats_url: str, markets: int, seconds: float) -> tuple[float, float]:
    """(js.publish_async frames/s, core publish frames/s) of a bare nats-py process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", BASELINE_PROCESS, nats_url, str(markets), str(seconds),
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out, _ = await proc.communicate()
    js_rate, core_rate = (float(x) for x in out.split())
    return js_rate, core_rate


class Streams:
    """Sequence positions and contents of the raw and normalized streams."""

    def __init__(self, nc: Any) -> None:
        self.js = nc.jetstream()
        self.raw = naming.stream_name(names.subject_prefix(ENV, "kalshi", "raw"))
        self.normalized = naming.stream_name(names.subject_prefix(ENV, "kalshi", "normalized"))

    async def last_seq(self, stream: str) -> int:
        try:
            info = await self.js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            return 0
        return int(info.state.last_seq)

    async def read(self, stream: str, first: int, last: int) -> list[tuple[float, bytes]]:
        """(store time in s, data) of messages ``first..last``."""
        if last < first:
            return []
        info = await self.js.stream_info(stream)
        sub = await self.js.subscribe(info.config.subjects[0], stream=stream, ordered_consumer=True,
                                      config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                                            opt_start_seq=first))  # fmt: skip
        out: list[tuple[float, bytes]] = []
        try:
            while True:
                msg = await sub.next_msg(timeout=10)
                meta = msg.metadata
                out.append((meta.timestamp.timestamp(), msg.data))
                if meta.sequence.stream >= last:
                    return out
        finally:
            await sub.unsubscribe()


class PublicSample:
    """Core-NATS subscriber to a sample of tickers' public orderbook and trade subjects."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.recording = False

    async def start(self, nc: Any, markets: int, sample: int) -> None:
        from ssmd.sim.model import MarketModel

        tickers = list(MarketModel(markets=markets, seed=SEED).markets)[:: max(1, markets // sample)]
        for ticker in tickers:
            await nc.subscribe(names.subject(ENV, "kalshi", "orderbook", ticker), cb=self._book)
            await nc.subscribe(names.subject(ENV, "kalshi", "trade", ticker), cb=self._trade)

    def _note(self, exchange_ns: int | None) -> None:
        if self.recording and exchange_ns is not None:
            self.latencies.append((time.time_ns() - exchange_ns) / 1e6)

    async def _book(self, msg: Any) -> None:
        self._note(codec.decode_struct(msg.data, r.OrderBookUpdate).exchange_ns)

    async def _trade(self, msg: Any) -> None:
        self._note(codec.decode_struct(msg.data, r.Trade).exchange_ns)


async def wait_started(streams: Streams, worker: subprocess.Popen[bytes], sim: Simulator, log: Path) -> None:
    """Until the worker has normalized the first records (snapshots at subscribe), at a low rate."""
    sim.rate(200)
    deadline = time.monotonic() + 90
    while await streams.last_seq(streams.normalized) == 0:
        if worker.poll() is not None or time.monotonic() > deadline:
            msg = f"the worker did not start; its log:\n{tail(log)}"
            raise RuntimeError(msg)
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)
    sim.rate(0)


async def drain(streams: Streams, quiet: float = 0.5, within: float = 60, stream: str = "") -> float:
    """Seconds until the normalized stream (or ``stream``) stops growing for ``quiet`` s."""
    stream = stream or streams.normalized
    t0 = time.monotonic()
    last, still = await streams.last_seq(stream), time.monotonic()
    while time.monotonic() - t0 < within:
        await asyncio.sleep(0.1)
        now = await streams.last_seq(stream)
        if now != last:
            last, still = now, time.monotonic()
        elif time.monotonic() - still >= quiet:
            break
    return still - t0


async def run_rate(step: Step, sim: Simulator, worker: int, streams: Streams, public: PublicSample,
                   warmup: float, seconds: float, nats_pid: int) -> None:
    sim.rate(step.rate)
    await asyncio.sleep(warmup)
    raw0, norm0 = await streams.last_seq(streams.raw), await streams.last_seq(streams.normalized)
    sent0, cpu0, scpu0, t0 = sim.written(), cpu_seconds(worker), cpu_seconds(sim.proc.pid), time.monotonic()
    ncpu0, ticks0 = cpu_seconds(nats_pid), machine_ticks()
    public.recording = True
    await asyncio.sleep(seconds)
    public.recording = False
    raw1, norm1 = await streams.last_seq(streams.raw), await streams.last_seq(streams.normalized)
    sent1, cpu1, scpu1, t1 = sim.written(), cpu_seconds(worker), cpu_seconds(sim.proc.pid), time.monotonic()
    step.nats_cpu = (cpu_seconds(nats_pid) - ncpu0) / (t1 - t0)
    ticks1 = machine_ticks()
    step.steal = (ticks1[0] - ticks0[0]) / max(1, ticks1[1] - ticks0[1])
    step.load = os.getloadavg()[0]
    sim.rate(0)
    step.drain = await drain(streams)
    wall = t1 - t0
    step.offered = (sent1 - sent0) / wall
    step.cpu = (cpu1 - cpu0) / wall
    step.sim_cpu = (scpu1 - scpu0) / wall
    raw_msgs = await streams.read(streams.raw, raw0 + 1, raw1)
    frames = 0
    raw_stored: dict[tuple[int | None, int], float] = {}  # (connection, received_ns): raw store time, ms
    for stored, data in raw_msgs:
        batch = codec.decode_batch(data)
        frames += len(batch)
        for f in batch:
            if isinstance(f, r.RawFrame):
                step.raw_lat.append(stored * 1e3 - f.received_ns / 1e6)
                raw_stored[f.connection_id, f.received_ns] = stored * 1e3
    step.raw, step.raw_batch = frames / wall, frames / max(1, len(raw_msgs))
    records = 0
    norm_msgs = await streams.read(streams.normalized, norm0 + 1, norm1)
    for stored, data in norm_msgs:
        batch = codec.decode_batch(data)
        records += len(batch)
        for rec in batch:
            exchange = getattr(rec, "exchange_ns", None)
            if exchange is not None:
                step.lat.append(stored * 1e3 - exchange / 1e6)
            step.internal.append(stored * 1e3 - rec.received_ns / 1e6)
            raw_ms = raw_stored.get((getattr(rec, "connection_id", None), rec.received_ns))
            if raw_ms is not None:
                step.stage.append(stored * 1e3 - raw_ms)
    step.normalized, step.norm_batch = records / wall, records / max(1, len(norm_msgs))
    step.public, public.latencies = public.latencies, []


TS_MS = re.compile(rb'"ts_ms":(\d+)')


async def transfer_ramp(nats_url: str, sim: Simulator, streams: Streams, rates: list[float],
                        warmup: float, seconds: float) -> list[Transfer]:
    """The bare transfer client (``TRANSFER_PROCESS``) at each rate, measured like the worker."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", TRANSFER_PROCESS, nats_url, sim.settings["SSMD_KALSHI_WS_URL"],
        sim.settings["SSMD_KALSHI_REST_URL"], sim.settings["SSMD_KALSHI_KEY_ID"],
        sim.settings["SSMD_KALSHI_PRIVATE_KEY"],
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    if await proc.stdout.readline() != b"READY\n":
        msg = "the transfer baseline did not start"
        raise RuntimeError(msg)
    out: list[Transfer] = []
    try:
        while await streams.last_seq("BENCHXFER") == 0:  # noqa: ASYNC110 (polls another process's stream)
            await asyncio.sleep(0.1)  # for the snapshots answering the subscription
        await drain(streams, stream="BENCHXFER")
        for rate in rates:
            t = Transfer()
            sim.rate(rate)
            await asyncio.sleep(warmup)
            seq0, sent0, cpu0, t0 = (await streams.last_seq("BENCHXFER"), sim.written(), cpu_seconds(proc.pid),
                                     time.monotonic())  # fmt: skip
            await asyncio.sleep(seconds)
            seq1, sent1, cpu1, t1 = (await streams.last_seq("BENCHXFER"), sim.written(), cpu_seconds(proc.pid),
                                     time.monotonic())  # fmt: skip
            sim.rate(0)
            await drain(streams, stream="BENCHXFER")
            wall = t1 - t0
            t.offered, t.stored, t.cpu = (sent1 - sent0) / wall, (seq1 - seq0) / wall, (cpu1 - cpu0) / wall
            for stored, data in await streams.read("BENCHXFER", seq0 + 1, seq1):
                if m := TS_MS.search(data):
                    t.lat.append(stored * 1e3 - int(m[1]))
            out.append(t)
            print(f"transfer baseline at {rate:g}: stored {t.stored:,.0f} of {t.offered:,.0f} frames/s, "
                  f"p99 {pct(t.lat, .99):.1f} ms, cpu {t.cpu:.2f}", flush=True)
    finally:
        proc.terminate()
        await proc.wait()
    await streams.js.delete_stream("BENCHXFER")
    return out


AREAS: list[tuple[str, tuple[str, ...]]] = [
    ("connector: raw batch encode + Faust send", ("Batcher", "send (connector.py)")),
    ("normalizer agent: public core-NATS publishes", ("PublicSubjects.publish",)),
    ("normalizer agent: parse + book (Normalizer.process)", ("Normalizer.process",)),
    # The raw batch's encode_batch matched above; the normalized batch and its public copies are one encoding.
    ("normalizer agent: encode normalized batch", ("encode_batch_and_structs (codec.py)",)),
    ("normalizer agent: decode raw batch", ("decode_batch (codec.py)",)),
    ("normalizer agent: table commit (changelog)", ("Normalizer.commit",)),
    ("normalizer agent: Faust stream, send, rest", ("normalize (normalizer.py)",)),
    ("connector: websocket read, envelope, batching", ("Connection.data_received", "WsConnection", "on_frame")),
    ("nats-py: socket writes (flusher)", ("Client._flusher",)),
    ("nats-py: reads (acks, fetched messages)", ("Client._read_loop", "_process_msg")),
    ("transport: consumer / fetch", ("consumer.py", "Fetcher", "fastsub.py", "reader.py")),
    ("transport: publisher / acks", ("publisher.py", "producer.py")),
    ("Faust: commit, tables, membership", ("commit", "membership.py", "Table", "changelog")),
]


def summarize_py_spy(raw: Path, busy_of: float, top: int) -> str:
    """Samples per area of the worker, then self and inclusive shares per function (py-spy raw stacks)."""
    self_n: dict[str, int] = {}
    incl: dict[str, int] = {}
    areas: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = []
        for f in stack.split(";"):
            name, _, where = f.partition(" (")
            frames.append(f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else name)
        self_n[frames[-1]] = self_n.get(frames[-1], 0) + n
        for fr in set(frames):
            incl[fr] = incl.get(fr, 0) + n
        joined = ";".join(frames)
        area = next((a for a, keys in AREAS if any(k in joined for k in keys)), "event loop, other")
        areas[area] = areas.get(area, 0) + n
    if not total:
        return "py-spy: no samples"
    rows = [f"py-spy: {total} non-idle samples ({total / busy_of:.0%} of the samples a busy thread would give)",
            "  by area (first match in the stack):"]
    for name, n in sorted(areas.items(), key=lambda kv: -kv[1]):
        rows.append(f"  {100 * n / total:5.1f}%  {name}")
    rows.append("  self%  incl%  function (file), by self time")
    for name, n in sorted(self_n.items(), key=lambda kv: -kv[1])[:top]:
        rows.append(f"  {100 * n / total:5.1f}  {100 * incl[name] / total:5.1f}  {name}")
    rows.append("  by inclusive time (below the event loop's own frames):")
    inner = [(k, v) for k, v in incl.items() if v < 0.6 * total]
    for name, n in sorted(inner, key=lambda kv: -kv[1])[:top]:
        rows.append(f"  {100 * self_n.get(name, 0) / total:5.1f}  {100 * n / total:5.1f}  {name}")
    return "\n".join(rows)


async def profile(rate: float, sim: Simulator, worker: int, seconds: float, tmp: Path, top: int) -> str:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        return "py-spy not found (pip install py-spy)"
    out, hz = tmp / "worker.pyspy", 100
    sim.rate(rate)
    await asyncio.sleep(2)
    proc = await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(worker), "--duration", str(int(seconds)), "--rate", str(hz), "--nonblocking",
        "--format", "raw", "-o", str(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = await proc.communicate()
    sim.rate(0)
    if not out.exists():
        return f"py-spy failed: {err.decode()[-500:]}"
    return summarize_py_spy(out, hz * int(seconds), top)


async def stream_stats(js: Any) -> str:
    rows = ["streams (whole run): messages, bytes, bytes/message"]
    for info in await js.streams_info():
        st = info.state
        rows.append(f"  {info.config.name:<48} {st.messages:>9} {st.bytes:>12} {st.bytes / max(1, st.messages):>8.0f}")
    return "\n".join(rows)


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def us_per_frame(cpu: float, frames: float) -> float:
    return 1e6 * cpu / frames if frames else float("nan")


def table(steps: list[Step]) -> str:
    head = (f"{'rate':>7} {'offered':>8} {'raw':>8} {'norm':>8} {'cpu':>5} {'us/f':>5} {'simcpu':>6} "
            f"{'natscpu':>7} {'p50':>6} {'p99':>7} "
            f"{'int50':>6} {'int99':>6} {'raw99':>6} {'stg99':>6} {'pub99':>6} {'drain':>5} {'rawb':>5} {'normb':>5} "
            f"{'xfer':>8} {'xcpu':>5} {'xus/f':>5} {'x99':>6} {'r_xfer':>6} "
            f"{'base_js':>8} {'r_pub':>5} {'core':>8} {'load':>5} {'steal':>5}")
    rows = [head, "-" * len(head)]
    for s in steps:
        xfer, xcpu = mean([t.stored for t in s.transfer]), mean([t.cpu for t in s.transfer])
        x99 = mean([pct(t.lat, .99) for t in s.transfer])
        rows.append(
            f"{s.rate:7.0f} {s.offered:8.0f} {s.raw:8.0f} {s.normalized:8.0f} {s.cpu:5.2f} "
            f"{us_per_frame(s.cpu, s.normalized):5.1f} {s.sim_cpu:6.2f} {s.nats_cpu:7.2f} "
            f"{pct(s.lat, .5):6.1f} {pct(s.lat, .99):7.1f} {pct(s.internal, .5):6.1f} {pct(s.internal, .99):6.1f} "
            f"{pct(s.raw_lat, .99):6.1f} {pct(s.stage, .99):6.1f} "
            f"{pct(s.public, .99):6.1f} {s.drain:5.1f} {s.raw_batch:5.1f} {s.norm_batch:5.1f} "
            f"{xfer:8.0f} {xcpu:5.2f} {us_per_frame(xcpu, xfer):5.1f} {x99:6.1f} {s.normalized / xfer:6.2f} "
            f"{s.baseline_js:8.0f} {s.normalized / s.baseline_js:5.2f} "
            f"{s.baseline_core:8.0f} {s.load:5.1f} {100 * s.steal:4.1f}%")
    return "\n".join(rows)


def summary(steps: list[Step]) -> str:
    """The highest sustainable rate of the worker and of the transfer baseline, and the ratios."""
    good = [s for s in steps if s.sustainable]
    best = max(steps, key=lambda s: s.normalized)
    js_base = statistics.median(s.baseline_js for s in steps)
    rows = [f"worker: highest sustainable rate (normalized >= 95% of offered, p99 < 50 ms): "
            f"{max(s.rate for s in good) if good else 'none'}; best normalized {best.normalized:,.0f} records/s "
            f"at {us_per_frame(best.cpu, best.normalized):.1f} us of CPU per frame"]
    if any(s.transfer for s in steps):
        xgood = [s for s in steps if s.transfer and all(t.sustainable for t in s.transfer)]
        xbest = max((t for s in steps for t in s.transfer), key=lambda t: t.stored)
        rows.append(f"transfer baseline: highest sustainable rate (in every run): "
                    f"{max(s.rate for s in xgood) if xgood else 'none'}; best stored {xbest.stored:,.0f} frames/s "
                    f"at {us_per_frame(xbest.cpu, xbest.stored):.1f} us of CPU per frame")
        sustained = max((s.normalized for s in good), default=0.0)
        x_sustained = max((mean([t.stored for t in s.transfer]) for s in xgood), default=float("nan"))
        rows.append(f"ratio to the transfer baseline: best {best.normalized / xbest.stored:.2f}, "
                    f"highest sustainable {sustained / x_sustained:.2f}")
    rows.append(f"ratio to the js.publish_async loop: best {best.normalized / js_base:.2f} ({js_base:,.0f} frames/s)")
    return "\n".join(rows)


async def main_async(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    server = NatsServer(data_dir=tmp / "nats").start()
    sim = Simulator(args.markets, tmp)
    log = tmp / "worker.log"
    extra = dict(kv.split("=", 1) for kv in args.worker_env)
    nc = await nats.connect(server.url)
    worker: subprocess.Popen[bytes] | None = None
    try:
        streams = Streams(nc)
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cpus)",
              flush=True)
        transfers: list[list[Transfer]] = []
        if args.transfer:
            transfers.append(await transfer_ramp(server.url, sim, streams, args.rates, args.warmup,
                                                 args.seconds))
        worker = start_worker(server.url, sim, tmp, log, extra)
        public = PublicSample()
        await public.start(nc, args.markets, args.sample)
        await wait_started(streams, worker, sim, log)
        await drain(streams)
        before = await baseline(server.url, args.markets, args.baseline_seconds)
        steps: list[Step] = []
        for rate in args.rates:
            step = Step(rate)
            assert server.proc is not None
            await run_rate(step, sim, worker.pid, streams, public, args.warmup, args.seconds, server.proc.pid)
            after = await baseline(server.url, args.markets, args.baseline_seconds)
            step.baseline_js, step.baseline_core = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
            before = after
            steps.append(step)
            print(f"rate {rate:g}: normalized {step.normalized:,.0f} records/s, p99 {pct(step.lat, .99):.1f} ms, "
                  f"worker cpu {step.cpu:.2f}", flush=True)
            if worker.poll() is not None:
                msg = f"the worker exited; its log:\n{tail(log)}"
                raise RuntimeError(msg)
        stats = await stream_stats(streams.js)
        warnings = [line for line in tail(log).splitlines() if "WARNING" in line]
        profiled = ""
        if args.profile:
            # Below saturation if some rate is sustainable, else the rate that normalized the most.
            good = [s for s in steps if s.sustainable]
            rate = args.profile_rate or (max(s.rate for s in good) if good else
                                         max(steps, key=lambda s: s.normalized).rate)
            profiled = (f"\nprofile of the worker at {rate:g} frames/s offered, {args.profile_seconds:g} s:\n"
                        + await profile(rate, sim, worker.pid, args.profile_seconds, tmp, args.top))
        stop_worker(worker)
        if args.transfer:
            transfers.append(await transfer_ramp(server.url, sim, streams, args.rates, args.warmup,
                                                 args.seconds))
        for i, step in enumerate(steps):
            step.transfer = [ramp[i] for ramp in transfers]
        print()
        print(f"command: {' '.join(sys.argv)}")
        print(f"{args.markets} markets, {args.seconds:g} s per rate after {args.warmup:g} s warm-up; frames/s; "
              "latencies in ms (p50/p99: simulator send -> normalized record stored; int: worker receive -> "
              "stored; raw99: worker receive -> raw batch stored; stg99: raw batch stored -> normalized record "
              "stored; pub99: send -> public core-NATS arrival, sampled tickers); cpu in cores; us/f: CPU per "
              "frame; xfer: the bare transfer client (simulator -> websockets -> js.publish_async per frame), "
              "mean of its runs before and after the worker's; base_js: the bare publish_async loop (no socket, "
              "simulator paused); steal: the hypervisor's share of the machine's CPU time")
        print(table(steps))
        print(summary(steps))
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(stats)
        if warnings:
            print(f"worker log: {len(warnings)} warnings, e.g. " + "; ".join(
                sorted({w.split("[WARNING]")[-1].strip()[:60] for w in warnings})[:6]))
        print(profiled)
    finally:
        await nc.close()
        if worker is not None:
            stop_worker(worker)
        sim.stop()
        server.stop()
        if args.keep:
            print(f"kept {tmp} (worker.log, worker.pyspy)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is not None:
        return
    worker.terminate()
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markets", type=int, default=500)
    parser.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")],
                        help="comma-separated simulator outputs/s (default 2000,4000,8000,16000,27000,33000,40000)")
    parser.add_argument("--worker-env", action="append", default=[], metavar="SSMD_X=V",
                        help="extra environment of the worker (e.g. SSMD_PARTITIONS=2), repeatable")
    parser.add_argument("--seconds", type=float, default=12.0, help="measured window per rate")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--baseline-seconds", type=float, default=3.0, help="per baseline mode and run")
    parser.add_argument("--sample", type=int, default=20, help="tickers whose public subjects are timed")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--no-transfer", dest="transfer", action="store_false",
                        help="skip the transfer baseline (bare websockets + js.publish_async client)")
    parser.add_argument("--profile-rate", type=float, default=0.0)
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (worker log, profile)")
    parser.add_argument("--quick", action="store_true", help="2 rates, 3 s each, 1 s baselines, short profile")
    args = parser.parse_args()
    if args.quick:
        args.rates = args.rates or [2000.0, 5000.0]
        args.seconds, args.warmup, args.baseline_seconds = 3.0, 1.0, 1.0
        args.markets, args.profile_seconds = min(args.markets, 200), 3.0
    args.rates = args.rates or [2000.0, 4000.0, 8000.0, 16000.0, 27000.0, 33000.0, 40000.0]
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
