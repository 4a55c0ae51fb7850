"""Windowed tables with event time, changelog compaction, dead letters, public-subject topics."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

import faust
from nats.aio.client import Client as NATS
from transport_helpers import make_app, running, wait_for

from ssmd.transport import dlq, envelope, keys, naming


def _window_app(url: str, seen: list[int]) -> tuple[Any, Any, Any, Any]:
    app = make_app("win", url)
    clicks = app.topic("clicks", key_type=str, value_type=int, partitions=2)
    forwarded = app.topic("forwarded", key_type=str, value_type=int, partitions=2)
    tumbling = app.Table("tumbling", default=int, partitions=2).tumbling(10, expires=timedelta(hours=1))
    hopping = app.Table("hopping", default=int, partitions=2).hopping(10, 5, expires=timedelta(hours=1))

    @app.agent(clicks)
    async def forward(stream: Any) -> None:
        async for key, value in stream.items():
            await forwarded.send(key=key, value=value)  # no timestamp: the input's travels along

    @app.agent(forwarded)
    async def count(stream: Any) -> None:
        async for key, value in stream.items():
            tumbling[key] += 1
            hopping[key] += 1
            seen.append(value)

    return app, clicks, tumbling, hopping


def _windows(table: Any, key: str) -> dict[tuple[float, float], int]:
    return {w: v for (k, w), v in table.table.data.items() if k == key}


async def test_windowed_counts_use_event_time_across_stages_and_recover(nats_server: Any) -> None:
    t0 = (int(time.time()) // 10) * 10 - 600  # ten minutes ago, on a window boundary
    event_times = [t0 + 1, t0 + 2, t0 + 7, t0 + 12, t0 + 13]
    seen: list[int] = []
    app, clicks, tumbling, hopping = _window_app(nats_server.url, seen)
    async with running(app):
        for i, ts in enumerate(event_times):
            await clicks.send(key="a", value=i, timestamp=ts)
        await wait_for(lambda: len(seen) == 5, what="5 events")
        assert _windows(tumbling, "a") == {(t0, t0 + 9.9): 3, (t0 + 10, t0 + 19.9): 2}
        # hopping 10 s every 5 s: [t0-5, t0+5) holds t0+1, t0+2; [t0, t0+10) adds t0+7; ...
        assert _windows(hopping, "a") == {
            (t0 - 5, t0 + 4.9): 2, (t0, t0 + 9.9): 3, (t0 + 5, t0 + 14.9): 3, (t0 + 10, t0 + 19.9): 2}
    # A new worker recovers the windows from the changelog.
    app2, _, tumbling2, hopping2 = _window_app(nats_server.url, [])
    async with running(app2):
        assert _windows(tumbling2, "a") == {(t0, t0 + 9.9): 3, (t0 + 10, t0 + 19.9): 2}
        assert _windows(hopping2, "a")[(t0 + 5, t0 + 14.9)] == 3


async def test_changelog_is_compacted_to_one_message_per_key(nats_server: Any, nc: NATS) -> None:
    app = make_app("compact", nats_server.url)
    src = app.topic("src", key_type=str, value_type=int, partitions=2)
    totals = app.Table("totals", default=int, partitions=2)
    done: list[int] = []

    @app.agent(src)
    async def add(stream: Any) -> None:
        async for key, value in stream.items():
            totals[key] += value
            done.append(value)

    async with running(app):
        for i in range(60):
            await src.send(key=f"k{i % 3}", value=1)
        await wait_for(lambda: len(done) == 60, what="60 events")
        await app.producer.flush()
        await asyncio.sleep(0.3)
    info = await nc.jetstream().stream_info(naming.stream_name("compact-totals-changelog"))
    assert info.config.max_msgs_per_subject == 1
    assert info.state.messages == 3  # one per key, the latest value


async def test_undecodable_message_goes_to_dead_letters(nats_server: Any, nc: NATS) -> None:
    class Point(faust.Record, serializer="json"):
        x: int

    app = make_app("dlqapp", nats_server.url, Topic=dlq.Topic)
    points = app.topic("points", key_type=str, value_type=Point, partitions=1)
    got: list[int] = []

    @app.agent(points)
    async def consume(stream: Any) -> None:
        async for p in stream:
            got.append(p.x)

    before = dlq.Topic.dead_letters["points"]
    async with running(app):
        js = nc.jetstream()
        subject = naming.partition_subject("points", 0)
        for payload in (b'{"x": 1}', b"\xff not json", b'{"x": 2}'):
            await js.publish(subject, payload, headers=envelope.encode_headers(b"k", payload, None, None, None))
        await wait_for(lambda: got == [1, 2], what="the good messages")
        await wait_for(lambda: dlq.Topic.dead_letters["points"] == before + 1, what="the dead letter")
        dead = await js.get_last_msg(naming.DLQ_STREAM, naming.dlq_subject("dlqapp", "points"))
        assert dead.data == b"\xff not json"
        assert dead.headers is not None and dead.headers["Ssmd-Topic"] == "points"
        assert dead.headers["Ssmd-Offset"] == "2"


async def test_public_subject_topic_keeps_its_subject_and_partitions_by_key(nats_server: Any, nc: NATS) -> None:
    app = make_app("public", nats_server.url)
    trades = app.topic("dev.kalshi.trade.*", key_type=str, value_type=str, partitions=4)
    got: list[tuple[str, str, int]] = []

    @app.agent(trades)
    async def consume(stream: Any) -> None:
        async for event in stream.events():
            got.append((event.key, event.value, event.message.partition))

    core: list[str] = []

    async def on_core(msg: Any) -> None:
        core.append(msg.subject)

    await nc.subscribe("dev.kalshi.trade.>", cb=on_core)
    async with running(app):
        await trades.send(key="KXGOLDH-26AUG2711-T4615.99", value="from faust")
        # A non-Faust publisher only knows the public subject; the key comes from its last token.
        await nc.jetstream().publish("dev.kalshi.trade.KXBTC-1", json.dumps("from outside").encode())
        await wait_for(lambda: len(got) == 2, what="both trades")
    assert sorted(got) == sorted([
        ("KXGOLDH-26AUG2711-T4615.99", "from faust", keys.partition_for(b"KXGOLDH-26AUG2711-T4615.99", 4)),
        ("KXBTC-1", "from outside", keys.partition_for(b"KXBTC-1", 4)),
    ])
    assert sorted(core) == ["dev.kalshi.trade.KXBTC-1", "dev.kalshi.trade.KXGOLDH-26AUG2711-T4615%2E99"]
