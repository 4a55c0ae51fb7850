"""Raw messages removed from the stream before the normalizer read them are a bus gap, then recovered.

Real nats-server, the real simulator, the app in process. The app normalizes, stops (committing its
offsets); then messages it never read are stored on every raw partition and the raw stream is purged,
as a retention limit would remove them while the normalizer is down or behind. The restarted app must
say so: a ``bus`` gap for every ticker (the removed messages could have held any of them), naming the
stream and the removed sequence range, closed by each ticker's next snapshot, and the books must end
equal to the exchange's. Without the check, the restart carries on as if nothing had been lost.
"""

from __future__ import annotations

from pathlib import Path

import nats
from pipeline_helpers import (
    read_settled,
    running,
    settings_for,
    steps,
    truth_book,
    updates_by_ticker,
    wait_for,
    yes_book,
)

from ssmd import records as r
from ssmd.app import topic_name
from ssmd.devstack import NatsServer
from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import test_config
from ssmd.transport import naming

MARKETS = 4


async def test_messages_removed_unread_are_a_bus_gap(nats_server: NatsServer, tmp_path: Path) -> None:
    config = test_config(markets=MARKETS, seed=9, lifecycle_prob=0.0)
    async with Simulator(config, key_path=tmp_path / "key.pem") as sim:
        settings = settings_for(sim, nats_server.url, tmp_path, checkpoint_interval=0.05)
        raw_stream = naming.stream_name(topic_name(settings.env, "raw"))
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        try:
            async with running(settings) as ctx:
                counters = ctx.services["normalizer"].counters
                await wait_for(lambda: counters.frames >= MARKETS, 20, "the snapshots normalized")
                await steps(sim, 100)
                await wait_for(lambda: counters.frames >= 40, 20, "some records normalized")
            info = await js.stream_info(raw_stream, subjects_filter=">")
            subjects = sorted(info.state.subjects or {})
            assert len(subjects) == settings.partitions
            for subject in subjects:
                await js.publish(subject, b"stored, never read, then removed")
            await js.purge_stream(raw_stream)
            removed_to = (await js.stream_info(raw_stream)).state.first_seq
            async with running(settings) as ctx:
                counters = ctx.services["normalizer"].counters
                await wait_for(lambda: counters.bus_gaps >= settings.partitions, 30, "a bus gap per partition")
                await steps(sim, 100)
                normalized = await read_settled(nats_server.url, topic_name(settings.env, "normalized"))
        finally:
            await nc.close()

    bus = [g for g in normalized if isinstance(g, r.Gap) and g.kind == "bus"]
    opened = {g.ticker: g for g in bus if g.end_ns is None}
    closed = {g.ticker: g for g in bus if g.end_ns is not None}
    updates = updates_by_ticker(normalized)
    assert len(updates) == MARKETS
    assert set(opened) == set(closed) == set(updates), (opened, closed)
    for g in opened.values():
        assert g.stream == raw_stream and g.received_seq == removed_to and 0 < g.expected_seq < removed_to  # type: ignore[operator]
        assert closed[g.ticker].start_ns == g.start_ns
    for ticker, ups in updates.items():
        assert yes_book(ups) == truth_book(sim, ticker), ticker
