"""Faust's message delivery loop, without four tasks per message.

Faust 0.15.3's ``Consumer._drain_messages`` hands every fetched message to the conductor with
``await self.wait_first(callback(message), self.suspend_flow.wait())``, so that a rebalance (which sets
``suspend_flow``) or a stop can interrupt a delivery blocked on a full stream buffer. ``wait_first``
wraps the callback, the flow event and the service's stopped and crashed events in a task each, waits
on all four and cancels three: about fifteen callbacks and several event-loop iterations per message
(counted in a worker: 9-10 ``Event.wait`` task steps per message), while the callback itself almost
never suspends (it decodes the message and puts it on the stream's queue).

Here the callback runs *eagerly*: its coroutine is stepped at once, in the loop's current iteration, as
Python 3.12's eager tasks do. A callback that finishes without suspending (the usual case) costs no
task and no loop iteration. One that suspends (a full buffer: backpressure) is resumed in a task and
awaited exactly as Faust awaits it, interruptible by ``suspend_flow`` and by a stop; an interrupted
callback is cancelled, as Faust cancels it. Everything else in the loop (read offsets, gap
bookkeeping, periodic commits, yielding every 100 messages) is Faust's, unchanged.

Both transports' consumers inherit this (``faust-streaming`` is pinned: the loop is a copy of its
private driver's with two calls changed, the delivery and the yield after each fetch, which was mode's
``Service.sleep(0)``: a ``wait_for`` on the stopped event, one more task per fetch).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Coroutine, Generator
from typing import Any, cast

from faust.transport import consumer as base
from faust.types import TP, Message
from mode import Service, ServiceT


def step(aw: Awaitable[Any]) -> asyncio.Future[Any] | None:
    """Run a coroutine until it first suspends: ``None`` if it finished, else a future that finishes it.

    An exception raised before the first suspension propagates from this call; a later one from the
    returned future. Cancelling that future cancels the coroutine (it gets ``CancelledError`` where
    it waits, as in a task). Another awaitable is wrapped in a future, unstepped.
    """
    if not asyncio.iscoroutine(aw):
        return asyncio.ensure_future(aw)
    coro = aw
    try:
        yielded = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_finish(coro, yielded))


async def _finish(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    """Drive a suspended coroutine to its end, the way a task does (a bare ``yield`` is a ``sleep(0)``)."""
    gen = cast(Generator[Any, Any, Any], coro)
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                yielded._asyncio_future_blocking = False
                await asyncio.wait((yielded,))  # done, whatever its outcome: the coroutine reads it
        except asyncio.CancelledError as exc:
            if yielded is not None:
                yielded.cancel()
            try:
                yielded = gen.throw(exc)  # raises it again unless the coroutine handles it
            except StopIteration as stop:
                return stop.value
            continue
        try:
            yielded = gen.send(None)
        except StopIteration as stop:
            return stop.value


class DeliversEagerly(base.Consumer):
    async def _deliver(self, message: Message) -> None:
        pending = step(self.callback(message))
        if pending is not None:
            await self.wait_first(pending, self.suspend_flow.wait())

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        """Faust's ``Consumer._drain_messages`` (0.15.3), delivering with :meth:`_deliver`."""
        deliver = self._deliver
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every = 100
        num_since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(base.CONSUMER_FETCHING)
                ait: AsyncIterator[tuple[TP, Message]] = getmany(timeout=1.0)
                # getmany may be called in a loop that never yields otherwise. ``asyncio.sleep(0)``, not
                # mode's ``self.sleep(0)``, which runs ``wait_for`` on the stopped event: a task per fetch.
                await asyncio.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await asyncio.sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            await deliver(message)
                            set_read_offset(tp, offset)
                unset_flag(base.CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(base.CONSUMER_FETCHING)
