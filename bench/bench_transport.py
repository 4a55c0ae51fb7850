"""Benchmark of ssmd's ``nats://`` Faust transport against its ceilings, in one run.

(a) per event: a pass-through agent (topic A -> topic B, one record per event) on ``nats://``
    against the same agent on ``memory://`` (Faust with ssmd's eager delivery, no broker: the ceiling).
    Target >= 0.7.
(b) batched: events of ``--records`` records each through the same agent on ``nats://``, in
    records/s, against bare nats-py moving the same records one per message (ordered push
    consumer + ``publish_async``). Target >= 1.0.
Latency (p50/p99, publish to arrival on B) at fixed rates below saturation, for each.

Throughput runs preload topic A, then time from the first processed event to the last output
acknowledged, so the load generator does not share the CPU. Everything runs in this process
against an embedded nats-server (``ssmd.devstack``).

    python bench/bench_transport.py                 # defaults: 20000 events, 2000 batches x 100
    python bench/bench_transport.py --quick         # smaller, for a smoke run

What bounds each figure (2-core Firecracker VM shared with nats-server and, while these were
measured, with another engineer's benchmarks; py-spy ``record -f raw -r 250`` of a relay-only
script, plus ``os.times()`` and ``/proc/<nats-server>/stat`` around the relay phase):

* memory://: Faust itself, ~120-170 us of CPU per event with its own delivery loop:
  ``_drain_messages`` -> ``wait_first`` task pairs, the conductor callback, ``Stream._c_aiter``,
  ``Topic.send`` -> ``publish_message`` and the ~15 asyncio handles they schedule per event. Both
  transports now deliver eagerly (``ssmd/transport/delivery.py``: no ``wait_first`` tasks), which
  made the pass-through agent 35-40% faster on either transport (session 7).
* nats:// per event: the same Faust work (70% of the relay's samples) plus the transport (30%):
  the connection read loop and its parser 8% (two messages per event, the delivery and the
  PubAck, each handed raw to a callback: no ``Msg``, no header dict), ``Producer.send`` 7%
  (header block, dedupe id, the ``HPUB`` command), the flusher's socket writes 6% (~0.02 per
  event, ~100 messages each: a write wakes nats-server, which often runs on this process's core
  for ~0.5 ms), waiting in ``epoll`` 6%, ``_to_message`` 1%. nats-server spends another ~25 us of
  CPU per event (store, dedupe, delivery, ack) on the same two cores, which the memory:// run
  does not pay: on a quiet VM the ratio is ~0.8-0.9, with a third busy process ~0.65-0.75, and
  single runs spread 0.6-0.95. Before this pass it was 0.45-0.48 on the same VM: the fetcher
  also stalled up to 1 s each time Faust's stream buffer filled, and every message paid for a
  nats-py ``Msg``, an email-parsed header dict, a ``Client.publish`` coroutine, and a socket
  write every ~20 messages.
* latency at 500 events/s: a lone output is written as soon as the event loop goes idle (only a
  saturated publisher waits up to ``linger``, 10 ms); the rest is two hops through nats-server.
* batched: Faust's per-event cost again, amortized over 100 records.
* bare nats-py: ``publish_async`` (a future, an inbox entry and a timer per message) plus an
  ordered push consumer's per-message callback: ~40 us per record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import struct
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import faust
import nats
from nats.aio.client import Client as NATS

from ssmd.devstack import NatsServer
from ssmd.transport import memory, naming
from ssmd.transport.publisher import Publisher
from ssmd.transport.streams import TopicLayout, ensure_stream

RECORD = b"x" * 112  # + an 8-byte timestamp = 120-byte records, as in design.md's measurements


def _record(ts: float) -> bytes:
    return struct.pack("<d", ts) + RECORD


def _sent_at(payload: bytes) -> float:
    return float(struct.unpack_from("<d", payload)[0])


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] * 1e3 if xs else float("nan")


class Relay:
    """A Faust app with one pass-through agent A -> B."""

    def __init__(self, broker: str, tag: str) -> None:
        self.app_id = f"bench-{tag}-{uuid.uuid4().hex[:6]}"
        self.app = faust.App(self.app_id, broker=broker, store="memory://", web_enabled=False,
                             topic_partitions=1, datadir=tempfile.mkdtemp(), broker_commit_interval=1.0)
        self.a = f"{self.app_id}-A"
        self.b = f"{self.app_id}-B"
        src = self.app.topic(self.a, value_type=bytes, value_serializer="raw", partitions=1)
        dst = self.app.topic(self.b, value_type=bytes, value_serializer="raw", partitions=1)
        self.count = 0
        self.first = 0.0
        self.target = 0
        self.reached = asyncio.Event()

        @self.app.agent(src)
        async def relay(stream: Any) -> None:
            async for value in stream:
                if not self.count:
                    self.first = time.perf_counter()
                await dst.send(value=value)
                self.count += 1
                if self.count == self.target:
                    self.reached.set()

    async def start(self) -> None:
        await self.app.start()
        while not (self.app.consumer.assignment() and self.app.tables.recovery.completed.is_set()):  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    async def wait(self, n: int) -> float:
        """Seconds from the first event to the n-th output acknowledged."""
        self.target = n
        if self.count < n:
            await self.reached.wait()
        await self.app.producer.flush()
        return time.perf_counter() - self.first

    async def stop(self) -> None:
        await self.app.stop()


async def _preload_nats(nc: NATS, topic: str, payloads: list[bytes]) -> None:
    js = nc.jetstream()
    await ensure_stream(js, TopicLayout(topic, 1))
    pub = Publisher(nc, max_inflight=8192)
    await pub.start()
    subject = naming.partition_subject(topic, 0)
    for p in payloads:
        await pub.publish(subject, p)
    await pub.flush()
    await pub.close()


def _preload_memory(name: str, topic: str, payloads: list[bytes]) -> None:
    b = memory.broker(name)
    b.create(topic, 1)
    for p in payloads:
        b.append(topic, 0, memory.Entry(None, p, time.time(), None), 1)


async def faust_throughput(kind: str, url: str, n: int, payload: bytes) -> float:
    """Events per second through the relay on ``memory`` or ``nats``."""
    broker = f"memory://{uuid.uuid4().hex[:8]}" if kind == "memory" else url
    relay = Relay(broker, kind)
    payloads = [payload] * n
    if kind == "memory":
        _preload_memory(broker.split("//")[1], relay.a, payloads)
    else:
        nc = await nats.connect(url)
        await _preload_nats(nc, relay.a, payloads)
        await nc.close()
    await relay.start()
    try:
        return n / await relay.wait(n)
    finally:
        await relay.stop()


async def faust_latency(kind: str, url: str, rate: float, seconds: float, records: int) -> dict[str, float]:
    """p50/p99 ms from publish to A until the output appears on B, at ``rate`` events/s."""
    broker = f"memory://{uuid.uuid4().hex[:8]}" if kind == "memory" else url
    relay = Relay(broker, kind)
    lat: list[float] = []
    nc = await nats.connect(url)
    if kind == "memory":
        name = broker.split("//")[1]
        b = memory.broker(name)
        b.create(relay.a, 1)
        b.create(relay.b, 1)
        out = b.logs[relay.b][0]

        def on_append() -> None:
            while len(lat) < len(out):
                lat.append(time.time() - _sent_at(out[len(lat)].value or b""))

        b.listeners.add(on_append)

        async def send(p: bytes) -> None:
            b.append(relay.a, 0, memory.Entry(None, p, time.time(), None), 1)
    else:
        js = nc.jetstream()
        await ensure_stream(js, TopicLayout(relay.a, 1))

        async def on_out(msg: Any) -> None:
            lat.append(time.time() - _sent_at(msg.data))

        await nc.subscribe(naming.partition_subject(relay.b, 0), cb=on_out)
        pub = Publisher(nc, linger=0)  # the load generator writes at once; it is not measured
        await pub.start()
        subject = naming.partition_subject(relay.a, 0)

        async def send(p: bytes) -> None:
            await pub.publish(subject, p)

    await relay.start()
    try:
        await _paced(rate, seconds, lambda: send(b"".join(_record(time.time()) for _ in range(records))))
        deadline = time.monotonic() + 10
        while len(lat) < int(rate * seconds) * 0.99 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    finally:
        await relay.stop()
        await nc.close()
    return {"p50_ms": _pct(lat, 0.5), "p99_ms": _pct(lat, 0.99), "n": len(lat)}


async def _paced(rate: float, seconds: float, send: Callable[[], Awaitable[None]]) -> None:
    start = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send()


async def bare_nats(url: str, n: int, rate: float | None = None, seconds: float = 0.0) -> dict[str, float]:
    """Bare nats-py: consume X (ordered push) and ``publish_async`` each message to Y.

    Without ``rate``: X is preloaded with ``n`` records, returns records/s. With ``rate``:
    records are published at that rate and the latency to arrival on Y is returned.
    """
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=4000)
    tag = uuid.uuid4().hex[:6]
    x, y = f"X{tag}", f"Y{tag}"
    await js.add_stream(name=x, subjects=[f"bx.{tag}"])
    await js.add_stream(name=y, subjects=[f"by.{tag}"])
    lat: list[float] = []
    moved = 0
    done = asyncio.Event()
    target = n if rate is None else int(rate * seconds)
    first = 0.0

    async def on_out(msg: Any) -> None:
        lat.append(time.time() - _sent_at(msg.data))

    if rate is not None:
        await nc.subscribe(f"by.{tag}", cb=on_out)
    else:
        await _preload_js(nc, f"bx.{tag}", [_record(0.0)] * n)

    async def relay(msg: Any) -> None:
        nonlocal moved, first
        if not moved:
            first = time.perf_counter()
        await js.publish_async(f"by.{tag}", msg.data)
        moved += 1
        if moved >= target:
            done.set()

    await js.subscribe(f"bx.{tag}", cb=relay, ordered_consumer=True)
    if rate is not None:
        pub = Publisher(nc, linger=0)
        await pub.start()
        await _paced(rate, seconds, lambda: _discard(pub.publish(f"bx.{tag}", _record(time.time()))))
    await done.wait()
    await js.publish_async_completed()
    took = time.perf_counter() - first
    await asyncio.sleep(0.2)
    await nc.close()
    if rate is None:
        return {"records_per_s": n / took}
    return {"p50_ms": _pct(lat, 0.5), "p99_ms": _pct(lat, 0.99), "n": len(lat)}


async def _discard(aw: Awaitable[Any]) -> None:
    await aw


async def _preload_js(nc: NATS, subject: str, payloads: list[bytes]) -> None:
    pub = Publisher(nc, max_inflight=8192)
    await pub.start()
    for p in payloads:
        await pub.publish(subject, p)
    await pub.flush()
    await pub.close()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    logging.basicConfig(level=logging.ERROR)
    results: dict[str, Any] = {}
    med = statistics.median
    with NatsServer(data_dir=Path(tempfile.mkdtemp())) as server:
        url = server.url
        one = _record(0.0)
        batch = b"".join(_record(0.0) for _ in range(args.records))
        # Alternate the contenders so background load hits both alike; report medians.
        mem: list[float] = []
        nat: list[float] = []
        fb: list[float] = []
        bare: list[float] = []
        for _ in range(args.repeat):
            mem.append(await faust_throughput("memory", url, args.events, one))
            nat.append(await faust_throughput("nats", url, args.events, one))
            fb.append(await faust_throughput("nats", url, args.batches, batch) * args.records)
            bare.append((await bare_nats(url, args.batches * args.records))["records_per_s"])
        results["a_per_event"] = {"memory_events_per_s": med(mem), "nats_events_per_s": med(nat),
                                  "ratio": med(nat) / med(mem), "runs": {"memory": mem, "nats": nat}}
        results["b_batched"] = {"nats_records_per_s": med(fb), "bare_nats_py_records_per_s": med(bare),
                                "ratio": med(fb) / med(bare), "runs": {"nats": fb, "bare": bare}}
        rec_rate = args.batch_rate * args.records
        results["latency"] = {
            f"per_event_memory@{args.event_rate:g}/s": await faust_latency(
                "memory", url, args.event_rate, args.seconds, 1),
            f"per_event_nats@{args.event_rate:g}/s": await faust_latency(
                "nats", url, args.event_rate, args.seconds, 1),
            f"batched_nats@{args.batch_rate:g}x{args.records}={rec_rate:g}rec/s": await faust_latency(
                "nats", url, args.batch_rate, args.seconds, args.records),
            f"bare_nats_py@{rec_rate:g}rec/s": await bare_nats(url, 0, rate=rec_rate, seconds=args.seconds),
        }
    return results


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=20000)
    p.add_argument("--batches", type=int, default=2000)
    p.add_argument("--records", type=int, default=100)
    p.add_argument("--event-rate", type=float, default=500.0, help="events/s for the latency runs")
    p.add_argument("--batch-rate", type=float, default=30.0, help="batches/s for the latency runs")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = p.parse_args()
    if args.quick:
        args.events, args.batches, args.seconds, args.repeat = 3000, 300, 1.0, 1
    print(json.dumps(asyncio.run(main(args)), indent=2))


if __name__ == "__main__":
    cli()
