"""Eager delivery of fetched messages to Faust's streams (``ssmd.transport.delivery``), on both transports."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from transport_helpers import make_app, running, wait_for

from ssmd.transport.delivery import step


async def test_a_coroutine_that_does_not_suspend_finishes_in_the_call() -> None:
    done: list[int] = []

    async def deliver() -> None:
        done.append(1)

    assert step(deliver()) is None
    assert done == [1]


async def test_an_exception_before_any_suspension_is_raised_by_the_call() -> None:
    async def bad() -> None:
        msg = "undecodable"
        raise ValueError(msg)

    with pytest.raises(ValueError, match="undecodable"):
        step(bad())


async def test_a_suspended_coroutine_is_finished_with_its_results_and_errors() -> None:
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    seen: list[Any] = []

    async def waits() -> str:
        seen.append(await gate)
        await asyncio.sleep(0)  # a bare yield
        seen.append(await asyncio.sleep(0.01, result="slept"))
        return "done"

    pending = step(waits())
    assert pending is not None and not pending.done() and seen == []
    gate.set_result(7)
    assert await pending == "done"
    assert seen == [7, "slept"]

    failing: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def raises_later() -> None:
        try:
            await failing
        except KeyError:
            seen.append("caught")
            msg = "after"
            raise RuntimeError(msg) from None

    pending = step(raises_later())
    assert pending is not None
    failing.set_exception(KeyError("x"))
    with pytest.raises(RuntimeError, match="after"):
        await pending
    assert seen[-1] == "caught"


async def test_cancelling_the_future_cancels_the_coroutine_where_it_waits() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    cleaned: list[str] = []

    async def blocked() -> None:
        try:
            await gate
        finally:
            cleaned.append("finally")

    pending = step(blocked())
    assert pending is not None
    await asyncio.sleep(0)
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    assert cleaned == ["finally"]
    assert gate.cancelled()  # what it waited on is cancelled, as a task cancels its waiter


async def test_a_coroutine_that_handles_its_cancellation_finishes_as_it_says() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def stubborn() -> str:
        try:
            await gate
        except asyncio.CancelledError:
            return "handled"
        return "not cancelled"

    pending = step(stubborn())
    assert pending is not None
    await asyncio.sleep(0)
    pending.cancel()
    assert await pending == "handled"


async def test_a_blocked_delivery_gives_way_when_the_flow_is_suspended() -> None:
    """A rebalance sets ``suspend_flow``: a delivery waiting on a full buffer must not hold it up."""
    app = make_app("delivery-suspend", "memory://delivery-suspend", topic_partitions=1)
    async with running(app):
        consumer: Any = app.consumer
        cancelled: list[str] = []

        async def blocked(message: str) -> None:
            try:
                await asyncio.Event().wait()  # a stream buffer that never drains
            except asyncio.CancelledError:
                cancelled.append(message)
                raise

        callback, consumer.callback = consumer.callback, blocked
        try:
            delivery = asyncio.ensure_future(consumer._deliver("m"))
            await asyncio.sleep(0.05)
            assert not delivery.done()
            consumer.suspend_flow.set()
            await asyncio.wait_for(delivery, 5)
        finally:
            consumer.callback = callback
            consumer.suspend_flow.clear()
    assert cancelled == ["m"]


@pytest.mark.parametrize("broker", ["memory", "nats"])
async def test_a_full_stream_buffer_delays_delivery_loses_nothing(broker: str, request: pytest.FixtureRequest) -> None:
    """An agent slower than the fetcher fills its buffer (4 events): deliveries then suspend, in order."""
    url = request.getfixturevalue("nats_server").url if broker == "nats" else "memory://delivery-full"
    app = make_app(f"delivery-full-{broker}", url, topic_partitions=1, stream_buffer_maxsize=4)
    topic = app.topic("slow", value_type=int, partitions=1)
    seen: list[int] = []

    @app.agent(topic)
    async def slow(stream: Any) -> None:
        async for v in stream:
            await asyncio.sleep(0.002)
            seen.append(v)

    async with running(app):
        for i in range(150):
            await topic.send(value=i)
        await wait_for(lambda: len(seen) == 150, 30, "150 events")
    assert seen == list(range(150))


async def test_delivering_a_message_creates_no_task() -> None:
    """Faust's own loop made four tasks per message (``wait_first``); the eager one makes none."""
    app = make_app("delivery-tasks", "memory://delivery-tasks", topic_partitions=1)
    topic = app.topic("count", value_type=int, partitions=1)
    seen: list[int] = []

    @app.agent(topic)
    async def sink(stream: Any) -> None:
        async for v in stream:
            seen.append(v)

    async with running(app):
        for i in range(10):  # warm up: the agent and the fetcher are running
            await topic.send(value=i)
        await wait_for(lambda: len(seen) == 10, 20, "10 events")
        loop = asyncio.get_running_loop()
        created = 0
        factory = loop.get_task_factory()

        def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Future[Any]:
            nonlocal created
            created += 1
            return factory(loop, coro, **kw) if factory else asyncio.Task(coro, loop=loop, **kw)

        loop.set_task_factory(counting)
        try:
            for i in range(10, 210):
                await topic.send(value=i)
            await wait_for(lambda: len(seen) == 210, 20, "210 events")
        finally:
            loop.set_task_factory(factory)
    assert seen == list(range(210))
    assert created < 100, f"{created} tasks for 200 messages"
