"""A normalized batch the server refuses stops the normalizer, and a restart normalizes its inputs again.

Real nats-server, the real simulator, the app in process. The normalized stream is made to refuse
new messages (full, with the discard-new policy), as a stream limit or a deleted stream would. The
normalizer must not acknowledge the raw events whose records were refused: it stops, and once the
stream takes messages again a restarted app normalizes them again. Without that, those records would
be missing from the normalized stream for good, their raw inputs committed as done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nats
from nats.js.api import DiscardPolicy
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

DATA = ("orderbook_snapshot", "orderbook_delta", "trade")


async def test_refused_records_are_normalized_again_after_a_restart(nats_server: NatsServer,
                                                                    tmp_path: Path) -> None:  # fmt: skip
    config = test_config(markets=4, seed=5, lifecycle_prob=0.0)
    async with Simulator(config, key_path=tmp_path / "key.pem") as sim:
        settings = settings_for(sim, nats_server.url, tmp_path, checkpoint_interval=0.05)
        stream = naming.stream_name(topic_name(settings.env, "normalized"))
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        try:
            async with running(settings) as ctx:
                counters = ctx.services["normalizer"].counters
                checkpoints = ctx.services["checkpoints"]
                await wait_for(lambda: counters.frames >= 4, 20, "the snapshots normalized")
                await steps(sim, 100)
                await wait_for(lambda: counters.frames >= 30, 20, "some records normalized")
                info = await js.stream_info(stream)
                full = info.config
                full.max_msgs, full.discard = info.state.messages, DiscardPolicy.NEW
                await js.update_stream(full)  # from now on the stream refuses every new message
                await steps(sim, 200)
                # The app stops: the normalizer's next checkpoint finds the refusal (OutputLost), unless
                # the consumer's offset commit, which flushes the producer first, meets it sooner.
                await wait_for(lambda: checkpoints.crash_reason is not None, 20, "the normalizer to stop")
                assert "maximum messages exceeded" in str(checkpoints.crash_reason)
            full.max_msgs, full.discard = -1, DiscardPolicy.OLD
            await js.update_stream(full)
            async with running(settings):
                await steps(sim, 100)
                missing, raw, normalized = await _unnormalized(nats_server.url, settings.env)
                for _ in range(100):
                    if not missing:
                        break
                    missing, raw, normalized = await _unnormalized(nats_server.url, settings.env)
        finally:
            await nc.close()

    assert not missing, f"{len(missing)} of {len(raw)} data frames have no normalized record, e.g. {missing[:5]}"
    assert len(raw) > 100
    updates = updates_by_ticker(normalized)
    assert len(updates) == 4
    for ticker, ups in updates.items():
        assert yes_book(ups) == truth_book(sim, ticker), ticker


async def _unnormalized(nats_url: str, env: str) -> tuple[list[tuple[Any, ...]], list[r.RawFrame], list[Any]]:
    """(data frames of the raw stream with no normalized record, those frames, the normalized records)."""
    raw = [f for f in await read_settled(nats_url, topic_name(env, "raw"), quiet=0.2)
           if isinstance(f, r.RawFrame) and f.channel in DATA]  # fmt: skip
    normalized = await read_settled(nats_url, topic_name(env, "normalized"), quiet=0.2)
    stored = {(x.connection_id, x.sid, x.seq) for x in normalized if isinstance(x, r.OrderBookUpdate | r.Trade)}
    missing = [(f.connection_id, f.sid, f.seq, f.channel) for f in raw if (f.connection_id, f.sid, f.seq) not in stored]
    return missing, raw, normalized
