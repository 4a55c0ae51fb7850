"""Issue 5 scale-out: a second worker takes a share of the partitions (and their markets) from a running one.

Worker A captures and normalizes every market; worker B joins, the group rebalances, A hands one of the
two partitions over (its pending raw events checkpointed first) and B captures that partition's markets on
a connection of its own. Both run on; then the exchange goes quiet and both stop cleanly. What must hold:
no record is written twice, a raw frame without a record is the old owner's copy of a moved market's
message, a trade both connections carried is recorded once, and every book at the end equals the
simulator's ground truth (a change captured by both workers around the handover is applied once).
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

from pipeline_helpers import read_settled, truth_book, wait_for, yes_book
from test_restart import ENV, MARKETS, _free_port, _kind, _snapshots_on, _worker_env, _workers

from ssmd import records as r
from ssmd.app import topic_name
from ssmd.devstack import NatsServer
from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import test_config


async def test_a_joining_worker_takes_a_share_and_books_stay_exact(nats_server: NatsServer, tmp_path: Path) -> None:
    config = test_config(markets=MARKETS, seed=33, rate=400, lifecycle_prob=0.0)
    async with Simulator(config, key_path=tmp_path / "key.pem") as sim, _workers() as workers:
        env = _worker_env(sim, nats_server.url, tmp_path)
        a = await workers.start({**env, "SSMD_DATA_DIR": str(tmp_path / "a")}, tmp_path / "a.log")
        await wait_for(lambda: any(_snapshots_on(sim, c) >= MARKETS for c in sim.ground_truth.sent), 40,
                       "A's subscriptions")  # fmt: skip
        (conn_a,) = list(sim.ground_truth.sent)
        await asyncio.sleep(1.5)
        b = await workers.start({**env, "SSMD_DATA_DIR": str(tmp_path / "b"), "SSMD_WEB_PORT": str(_free_port())},
                                tmp_path / "b.log")  # fmt: skip

        def b_captures() -> bool:
            assert b.returncode is None, (tmp_path / "b.log").read_text()[-3000:]
            return any(_snapshots_on(sim, c) > 0 for c in set(sim.ground_truth.sent) - {conn_a})

        await wait_for(b_captures, 40, "B capturing its share")
        await asyncio.sleep(3)
        sim.rate = 0
        await asyncio.sleep(3)  # both deliver and normalize what they have
        for w in (a, b):
            w.send_signal(signal.SIGTERM)
        for w, name in ((a, "a"), (b, "b")):
            assert await asyncio.wait_for(w.wait(), 30) == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
        raw = await read_settled(nats_server.url, topic_name(ENV, "raw"), quiet=0.3)
        normalized = await read_settled(nats_server.url, topic_name(ENV, "normalized"), quiet=0.3)
        truth = {t: truth_book(sim, t) for t in sim.model.markets}
    frames = [f for f in raw if isinstance(f, r.RawFrame) and _kind(f)]
    by_conn = Counter(f.connection_id for f in frames)
    assert len(by_conn) == 2  # both workers captured
    outputs = [x for x in normalized if isinstance(x, r.OrderBookUpdate | r.Trade)]
    keys = Counter((x.connection_id, x.sid, x.seq) for x in outputs)
    assert max(keys.values()) == 1
    # Around the handover both connections carry the moved markets: the old owner's copies are dropped,
    # so a frame without a record is one of those, about a market the new owner captured too.
    first_conn = frames[0].connection_id
    moved = {f.ticker for f in frames if f.connection_id != first_conn}
    missing = [f for f in frames if (f.connection_id, f.sid, f.seq) not in keys]
    assert all(f.connection_id == first_conn and f.ticker in moved for f in missing)
    assert 0 < len(moved) < MARKETS  # B took a share, not everything
    trades = Counter(x.trade_id for x in outputs if isinstance(x, r.Trade))
    assert max(trades.values()) == 1  # a trade both connections carried is recorded once
    for ticker in truth:
        updates = [x for x in outputs if isinstance(x, r.OrderBookUpdate) and x.ticker == ticker]
        assert yes_book(updates) == truth[ticker], ticker
