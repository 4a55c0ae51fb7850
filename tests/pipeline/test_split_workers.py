"""Issue 5 scale-out: capture and normalizer in separate workers (``--agents connector`` / ``normalizer``).

A gap only the normalizer can see (here: an empty snapshot, then a delta taking a level below zero)
needs a fresh snapshot from the capture, which runs in the other worker: the request travels over NATS
(:mod:`ssmd.capture.resync`). What must hold: the gap is closed by a snapshot, records are flagged
exactly inside it, and every book at the end equals the simulator's ground truth.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from nats.js.errors import NotFoundError
from pipeline_helpers import read_batches, read_settled
from test_pipeline_faults import assert_books_equal_truth, assert_flagged_exactly_inside_gaps, gaps
from test_restart import ENV, _free_port, _worker_env, _workers

from ssmd import records as r
from ssmd.app import topic_name
from ssmd.devstack import NatsServer
from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import test_config


async def test_a_normalizer_in_another_worker_gets_its_gaps_recovered(nats_server: NatsServer,
                                                                       tmp_path: Path) -> None:  # fmt: skip
    config = test_config(markets=4, seed=5, rate=200, lifecycle_prob=0.0)
    async with Simulator(config, key_path=tmp_path / "key.pem") as sim, _workers() as workers:
        sim.faults.empty_next_snapshots(1)  # the first market subscribed gets an empty book
        env = _worker_env(sim, nats_server.url, tmp_path)
        logs = {name: tmp_path / f"{name}.log" for name in ("connector", "normalizer")}
        capture = await workers.start({**env, "SSMD_DATA_DIR": str(tmp_path / "c")}, logs["connector"], "connector")
        normalizer = await workers.start(
            {**env, "SSMD_DATA_DIR": str(tmp_path / "n"), "SSMD_WEB_PORT": str(_free_port())},
            logs["normalizer"], "normalizer",
        )  # fmt: skip
        # The normalizer stops first: the capture's stop is a disconnect gap that nothing would recover.
        procs = {"normalizer": normalizer, "connector": capture}

        async def recovered() -> bool:
            for name, proc in procs.items():
                assert proc.returncode is None, logs[name].read_text()[-3000:]
            try:
                records = await read_batches(nats_server.url, topic_name(ENV, "normalized"))
            except NotFoundError:
                return False  # the normalizer has not created its stream yet
            opened, closed = gaps(records)
            return bool(opened) and len(closed) == len(opened)

        deadline = time.monotonic() + 60
        while not await recovered():
            assert time.monotonic() < deadline, "gap not recovered:\n" + logs["normalizer"].read_text()[-3000:]
            await asyncio.sleep(0.3)
        sim.rate = 0
        await asyncio.sleep(2)  # both workers deliver what they have
        for name, proc in procs.items():
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0, logs[name].read_text()[-3000:]
        records = await read_settled(nats_server.url, topic_name(ENV, "normalized"), quiet=0.3)

    opened, closed = gaps(records)
    empty = next(x for x in records if isinstance(x, r.OrderBookUpdate) and not x.bids and not x.asks)
    assert [g.ticker for g in opened] == [empty.ticker] == [g.ticker for g in closed]
    recovery = next(x for x in records if isinstance(x, r.OrderBookUpdate) and x.ticker == empty.ticker
                    and x.kind == "snapshot" and x.received_ns > opened[0].start_ns)  # fmt: skip
    assert recovery.connection_id == empty.connection_id  # a get_snapshot answered, not a new connection
    assert_flagged_exactly_inside_gaps(records)
    assert_books_equal_truth(records, sim)
