"""Real worker processes sharing one app: crash and restart, join, failover, leader timers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import nats
from cluster import Topic, Worker, send_inputs
from nats.aio.client import Client as NATS
from transport_helpers import wait_for

from ssmd.devstack import NatsServer


def _inputs_seen(out: Topic) -> set[int]:
    return {int(v.split(":")[0]) for v in out.values}


def _assert_tables_followed(out: Topic) -> None:
    """Each key's count (a table) covers every input of that key: state moved with partitions."""
    counts: dict[int, int] = {}
    for item in out.values:
        value, _, count = (int(x) for x in item.split(":"))
        counts[value % 8] = max(counts.get(value % 8, 0), count)
    inputs = _inputs_seen(out)
    for key, count in counts.items():
        assert count >= len({v for v in inputs if v % 8 == key}), f"key k{key} lost table state"


def _pids(out: Topic, start: int = 0) -> set[int]:
    return {int(v.split(":")[1]) for v in out.values[start:]}


async def test_kill_9_and_restart_loses_nothing(nats_server: Any, nc: NATS, tmp_path: Path) -> None:
    worker = Worker(nats_server.url, "crash", tmp_path, "w1")
    try:
        out = Topic(nc, "out")
        feeder = asyncio.create_task(send_inputs(nc, range(400)))
        await out.start()
        await wait_for(lambda: len(out.values) >= 100, 30, "first outputs")
        worker.kill()  # mid-stream: inputs are still being published
        worker = Worker(nats_server.url, "crash", tmp_path, "w2")
        await feeder
        try:
            await wait_for(lambda: _inputs_seen(out) == set(range(400)), 40, "every input in the output")
        except AssertionError as exc:
            missing = sorted(set(range(400)) - _inputs_seen(out))
            tail = worker.log.read_text(errors="replace")[-4000:]
            msg = f"{exc}: {len(missing)} missing, e.g. {missing[:20]}; the restarted worker's log ends:\n{tail}"
            raise AssertionError(msg) from None
        # Duplicates are bounded by what was in flight (commits every 0.2 s).
        assert len(out.values) - 400 < 200
        _assert_tables_followed(out)
    finally:
        worker.stop()


async def test_workers_join_split_and_take_over(nats_server: Any, nc: NATS, tmp_path: Path) -> None:
    workers = [Worker(nats_server.url, "group", tmp_path, f"w{i}") for i in range(2)]
    try:
        out = Topic(nc, "out")
        ticks = Topic(nc, "ticks")
        await send_inputs(nc, range(0, 100))
        await out.start()
        await ticks.start()
        n = await _until_all_work(nc, out, workers, 100)

        # A third worker joins and takes a share.
        workers.append(Worker(nats_server.url, "group", tmp_path, "w2"))
        n = await _until_all_work(nc, out, workers, n)

        # The leader-only timer runs on exactly one worker.
        t0 = len(ticks.values)
        await asyncio.sleep(1.0)
        assert len({int(v) for v in ticks.values[t0:]}) == 1

        # kill -9 one worker: the survivors take its partitions within the bound.
        victim = workers.pop(0)
        victim.kill()
        killed_at = time.monotonic()
        mark = len(out.values)
        await send_inputs(nc, range(n, n + 200))
        await wait_for(lambda: _inputs_seen(out) >= set(range(n + 200)), 30, "every input after the kill")
        took = time.monotonic() - killed_at
        assert took < 15, f"failover took {took:.1f} s"
        assert _pids(out, mark) <= {w.pid for w in workers}
        _assert_tables_followed(out)
        t0 = len(ticks.values)
        await asyncio.sleep(1.0)
        assert len({int(v) for v in ticks.values[t0:]}) == 1
    finally:
        for w in workers:
            w.stop()


async def _until_all_work(nc: NATS, out: Topic, workers: list[Worker], n: int) -> int:
    """Send inputs in small batches until every worker produces output; return the next input."""
    deadline = time.monotonic() + 30
    while True:
        mark = len(out.values)
        await send_inputs(nc, range(n, n + 60))
        n += 60
        want = set(range(n))
        await wait_for(lambda want=want: _inputs_seen(out) >= want, 30, "every input so far")  # type: ignore[misc]
        if _pids(out, mark) == {w.pid for w in workers}:
            return n
        assert time.monotonic() < deadline, "a worker never got partitions"
        await asyncio.sleep(0.5)


async def test_worker_survives_a_nats_server_restart(tmp_path: Path) -> None:
    server = NatsServer(data_dir=tmp_path / "nats").start()
    worker = Worker(server.url, "restart", tmp_path, "w0")
    client = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        out = Topic(client, "out")
        await send_inputs(client, range(100))
        await out.start()
        await wait_for(lambda: _inputs_seen(out) >= set(range(100)), 30, "outputs before the restart")
        server.stop()
        await asyncio.sleep(1.0)
        server = NatsServer(data_dir=tmp_path / "nats", port=server.port).start()
        await send_inputs(client, range(100, 200))
        after = Topic(client, "out")  # a fresh reader: the old ordered consumer died with the server
        await after.start()
        await wait_for(lambda: _inputs_seen(after) >= set(range(200)), 30, "outputs after the restart")
        assert worker.proc.poll() is None, "the worker died with the server"
    finally:
        worker.stop()
        await client.close()
        server.stop()
