"""One worker, in process, against a real nats-server: agents, offsets, commits, tables."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from transport_helpers import make_app, running, wait_for

from ssmd.transport import naming


def _pipeline(app_id: str, url: str, sink: list[int]) -> Any:
    app = make_app(app_id, url)
    src = app.topic("src", key_type=str, value_type=int, partitions=2)
    mid = app.topic("mid", key_type=str, value_type=int, partitions=2)
    counts = app.Table("counts", default=int, partitions=2)

    @app.agent(src)
    async def double(stream: Any) -> None:
        async for k, v in stream.items():
            await mid.send(key=k, value=v * 2)

    @app.agent(mid)
    async def count(stream: Any) -> None:
        async for k, v in stream.items():
            counts[k] += 1
            sink.append(v)

    return app, src, counts


async def test_two_stage_pipeline_commits_and_resumes(nats_server: Any, nc: NATS) -> None:
    sink: list[int] = []
    app, src, counts = _pipeline("pipe", nats_server.url, sink)
    async with running(app):
        for i in range(40):
            await src.send(key=f"k{i % 4}", value=i)
        await wait_for(lambda: len(sink) >= 40, what="40 outputs")
        assert sorted(sink) == [2 * i for i in range(40)]
        assert {k: counts[k] for k in ("k0", "k1", "k2", "k3")} == {"k0": 10, "k1": 10, "k2": 10, "k3": 10}
    # Committed offsets are "next to read": the last sequence of each partition + 1.
    js = nc.jetstream()
    kv = await js.key_value(naming.offsets_bucket("pipe"))
    for p in (0, 1):
        last = await js.get_last_msg(naming.stream_name("src"), naming.partition_subject("src", p))
        entry = await kv.get(naming.offset_key("src", p))
        assert b'"offset": %d' % (last.seq + 1) in (entry.value or b"")

    # A restarted worker resumes after its commits (nothing re-read) and recovers the table.
    sink2: list[int] = []
    app2, src2, counts2 = _pipeline("pipe", nats_server.url, sink2)
    async with running(app2):
        assert counts2["k0"] == 10
        for i in range(40, 44):
            await src2.send(key="k0", value=i)
        await wait_for(lambda: len(sink2) >= 4, what="4 new outputs")
        await asyncio.sleep(0.5)
        assert sorted(sink2) == [80, 82, 84, 86]
        assert counts2["k0"] == 14


async def test_highwaters_are_exact(nats_server: Any) -> None:
    app = make_app("hw", nats_server.url)
    topic = app.topic("hw-topic", value_type=int, partitions=3)

    done: list[int] = []

    @app.agent(topic)
    async def sink(stream: Any) -> None:
        async for v in stream:
            done.append(v)

    async with running(app):
        metas = [await (await topic.send(key=f"key{i}".encode(), value=i)) for i in range(30)]
        last: dict[int, int] = {}
        first: dict[int, int] = {}
        for m in metas:
            last[m.partition] = max(last.get(m.partition, 0), m.offset)
            first[m.partition] = min(first.get(m.partition, 10**9), m.offset)
        tps = [app.consumer._new_topicpartition("hw-topic", p) for p in range(3)]
        hw = await app.consumer.highwaters(*tps)
        early = await app.consumer.earliest_offsets(*tps)
        assert {tp.partition: v for tp, v in hw.items()} == {p: last.get(p, -1) + 1 for p in range(3)}
        assert {tp.partition: v for tp, v in early.items() if tp.partition in first} == first
        # The monitor's lag (end offset - committed offset) drops to zero once all is processed.
        await wait_for(lambda: len(done) == 30, what="30 events")
        monitor = app.monitor
        await wait_for(lambda: all(monitor.tp_committed_offsets.get(tp) == hw[tp] for tp in tps if hw[tp]),
                       what="commits of every partition")
        assert all(monitor.tp_end_offsets[tp] == hw[tp] for tp in tps if hw[tp])


@pytest.mark.parametrize("broker", ["memory", "nats"])
async def test_same_agents_run_on_memory_and_nats(broker: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("nats_server").url if broker == "nats" else "memory://agents-on-both"
    sink: list[int] = []
    app, src, counts = _pipeline(f"both-{broker}", url, sink)
    async with running(app):
        for i in range(10):
            await src.send(key="a", value=i)
        await wait_for(lambda: len(sink) >= 10, what="10 outputs")
        assert counts["a"] == 10
