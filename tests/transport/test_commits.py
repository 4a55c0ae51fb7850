"""A commit asked for while another runs still commits what was acknowledged meanwhile (both transports)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from faust.types import TP
from transport_helpers import make_app, running, wait_for


@pytest.mark.parametrize("broker", ["memory", "nats"])
async def test_a_commit_during_another_covers_the_later_acks(broker: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("nats_server").url if broker == "nats" else "memory://commit-race"
    app = make_app(f"commit-race-{broker}", url, topic_partitions=1, broker_commit_interval=30)
    topic = app.topic("race", value_type=int, partitions=1)
    seen: list[int] = []

    @app.agent(topic)
    async def sink(stream: Any) -> None:
        async for v in stream:
            seen.append(v)

    async with running(app):
        consumer = app.consumer
        committed: list[Mapping[TP, int]] = []
        gate = asyncio.Event()
        commit_offsets = consumer._commit

        async def slow_commit(offsets: Mapping[TP, int]) -> bool:
            await gate.wait()  # hold the first commit in flight while more events are acknowledged
            committed.append(dict(offsets))
            return await commit_offsets(offsets)

        consumer._commit = slow_commit  # type: ignore[method-assign]
        for i in range(5):
            await topic.send(value=i)
        await wait_for(lambda: len(seen) == 5, what="5 events")
        await asyncio.sleep(0.1)  # the last one is acknowledged when the agent asks for the next
        first = asyncio.create_task(consumer.commit())
        await asyncio.sleep(0.05)
        for i in range(5, 10):
            await topic.send(value=i)
        await wait_for(lambda: len(seen) == 10, what="10 events")
        await asyncio.sleep(0.1)
        second = asyncio.create_task(consumer.commit())  # Faust alone would just wait for the first
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(first, second)
        (tp,) = committed[0]
        assert committed[-1][tp] - committed[0][tp] == 5  # the second commit took the five later events
