"""Faust's producer contract on JetStream (``reference/faust-nats-transport.md`` section 2.3).

``send`` publishes through the pipelined :class:`~.publisher.Publisher` and returns a future of
``RecordMetadata`` (offset = stream sequence); ``flush`` drains Faust's buffer and waits for every
acknowledgement, and Faust calls it before each offset commit, which is what makes the pipeline
at-least-once. An output sent without a timestamp while an agent handles an input gets the
input's timestamp (event time travels across stages, as in Kafka Streams). Every message
carries a ``Nats-Msg-Id``:

* sent while an agent handles an input event: ``<app id>:<topic>/<partition>/<offset>:<n>``, the
  input's position plus the number of sends this task made for that event, so re-processing
  the input after a crash re-sends the same ids and JetStream drops the copies (within the
  stream's duplicate window). Two agents of one app that read the same input and write the same
  output topic would collide; give such agents distinct apps or topics;
* otherwise (timers, table changelog writes, which carry absolute values anyway):
  ``<producer id>:<counter>``, unique per process, which still deduplicates publish retries.
"""

from __future__ import annotations

import asyncio
import contextvars
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from faust.exceptions import ProducerSendError
from faust.streams import current_event
from faust.transport import producer as base
from faust.types import TP, RecordMetadata
from faust.types.core import HeadersArg
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from . import envelope, keys, naming
from .connection import NATS_ERRORS, close, connect
from .fastsub import subscribe_direct
from .options import NatsOptions
from .publisher import Ack, Publisher, PublishError
from .streams import TopicLayout
from .topology import Topology

# (id of the event being handled, sends made for it) in the current task
_sends_for_event: contextvars.ContextVar[tuple[int, int]] = contextvars.ContextVar("ssmd_sends_for_event")
_SUBJECTS_KEPT = 1 << 16  # publish subjects remembered (keyed topics: one per key in use)


class Producer(base.Producer):
    """The ``nats://`` producer."""

    _nc: NATS | None = None
    _js: JetStreamContext | None = None
    _publisher: Publisher | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._opts: NatsOptions = self.transport.options  # type: ignore[attr-defined]
        self._topology: Topology = self.transport.topology  # type: ignore[attr-defined]
        self._id = secrets.token_hex(6)
        self._counter = 0
        self._app_id: str | None = None
        self._subjects: dict[tuple[str, int, bytes | None], str] = {}
        self._start_lock = asyncio.Lock()
        self.dead_letters = 0

    async def on_start(self) -> None:
        await super().on_start()
        await self._connect()

    async def _connect(self) -> Publisher:
        async with self._start_lock:
            if self._publisher is None:
                self._nc = await connect(self._opts, "producer")
                self._js = self._nc.jetstream()
                publisher = Publisher(self._nc, max_inflight=self._opts.max_inflight,
                                      ack_timeout=self._opts.ack_timeout, linger=self._opts.linger)
                await publisher.start()
                self._publisher = publisher
        return self._publisher

    async def on_stop(self) -> None:
        if self._publisher is not None:
            try:
                await asyncio.wait_for(self._publisher.flush(), timeout=self._opts.ack_timeout * 2)
            finally:
                await self._publisher.close()
        if self._nc is not None:
            await close(self._nc, "producer")

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None
        return self._js

    def _message_id(self, event: Any) -> str:
        if event is None:
            self._counter += 1
            return f"{self._id}:{self._counter}"
        last = _sends_for_event.get(None)
        n = last[1] + 1 if last is not None and last[0] == id(event) else 0
        _sends_for_event.set((id(event), n))
        msg = event.message
        if self._app_id is None:
            self._app_id = str(self.app.conf.id)
        return f"{self._app_id}:{msg.topic}/{msg.partition}/{msg.offset}:{n}"

    def _subject(self, layout: TopicLayout, partition: int, key: bytes | None) -> str:
        # Remembered: a changelog writes the same keys over and over (one per ticker, every checkpoint).
        cache_key = (layout.topic, partition, key if layout.keyed else None)
        subject = self._subjects.get(cache_key)
        if subject is None:
            subject = layout.publish_subject(partition, key)
            if len(self._subjects) >= _SUBJECTS_KEPT:
                self._subjects.clear()
            self._subjects[cache_key] = subject
        return subject

    async def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None,
                   timestamp: float | None, headers: HeadersArg | None, *,
                   transactional_id: str | None = None) -> asyncio.Future[RecordMetadata]:
        publisher = self._publisher or await self._connect()
        layout = self._topology.ready(topic) or await self._topology.for_send(self.js, topic)
        if partition is None:
            partition = keys.partition_for(key, layout.partitions)
        event = current_event()
        if timestamp is None and event is not None:
            # Event time travels: an output sent while handling an input keeps the input's time,
            # so windowed tables downstream count it in the right window.
            timestamp = event.message.timestamp
        tp = TP(topic, partition)

        def metadata(ack: Ack) -> RecordMetadata:
            return RecordMetadata(topic, partition, tp, ack.seq, timestamp, 0)

        try:
            # The server refuses the message if the subject belongs to another stream (the
            # expected-stream header): no misrouting.
            block = envelope.header_block(key, value, timestamp, cast(Any, headers), self._message_id(event),
                                          layout.stream)
            subject = self._subject(layout, partition, key)
            if publisher.has_room:
                return publisher.publish_nowait(subject, value or b"", block, metadata)
            return await publisher.publish(subject, value or b"", block, metadata)
        except Exception as exc:
            msg = f"publish to {topic!r} failed: {exc!r}"
            raise ProducerSendError(msg) from exc

    async def send_and_wait(self, topic: str, key: bytes | None, value: bytes | None,
                            partition: int | None, timestamp: float | None, headers: HeadersArg | None,
                            *, transactional_id: str | None = None) -> RecordMetadata:
        fut = await self.send(topic, key, value, partition, timestamp, headers)
        return await fut

    async def flush(self) -> None:
        await self.buffer.flush()
        if self._publisher is not None:
            try:
                await self._publisher.flush()
            except PublishError as exc:
                raise ProducerSendError(str(exc)) from exc

    async def create_topic(self, topic: str, partitions: int, replication: int, *,
                           config: Any = None, timeout: Any = 30.0,  # noqa: ASYNC109 - Faust's signature
                           retention: Any = None,
                           compacting: bool | None = None, deleting: bool | None = None,
                           ensure_created: bool = False) -> None:
        if self._js is None:
            await self._connect()
        self._topology.declare(topic, partitions, compacting=bool(compacting),
                               retention=retention if deleting or retention else None, replicas=replication)
        deadline = time.monotonic() + float(timeout or 30.0)
        while True:
            try:
                await self._topology.ensure(self.js, topic)
                return
            except NATS_ERRORS:
                # NATS is restarting or unreachable: Faust's timeout bounds the wait, not one request
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    def key_partition(self, topic: str, key: bytes) -> TP:
        layout = self._topology.known(topic)
        n = layout.partitions if layout is not None else self.app.conf.topic_partitions
        return TP(topic, keys.partition_for(key, n))

    def supports_headers(self) -> bool:
        return True

    async def publish_core_many(self, subjects: Sequence[str], payloads: Sequence[bytes]) -> None:
        """Core NATS publishes (no stream, no acknowledgement) of each ``payloads[i]`` on ``subjects[i]``,
        sharing the socket writes of ``send``.

        For live-feed copies of records that are also sent durably (the public per-ticker subjects): at
        most once, like any core publish. Raises ``nats.errors.Error`` for a bad subject or size.
        """
        publisher = self._publisher or await self._connect()
        publisher.publish_core_many(subjects, payloads)

    async def subscribe_core(self, subject: str, handler: Callable[[str, bytes], None]) -> None:
        """Call ``handler(subject, payload)`` for each core NATS message on ``subject`` (a pattern) until
        the producer stops, re-subscribed after a reconnect.

        For low-rate control messages (resync requests). The handler runs in the connection's read loop:
        it must not block, and an exception it raises is logged and the message dropped.
        """
        await self._connect()
        assert self._nc is not None
        await subscribe_direct(self._nc, subject, lambda subj, _reply, _hdrs, data: handler(subj.decode(), data))

    async def dead_letter(self, topic: str, partition: int, offset: int, key: bytes | None,
                          value: bytes | None, reason: str) -> None:
        """Set an undecodable message aside on the app's dead-letter subject for ``topic``."""
        publisher = self._publisher or await self._connect()
        await self._topology.ensure_dlq(self.js)
        hdrs = envelope.encode_headers(key, value, None, None,
                                       f"dlq:{self.app.conf.id}:{topic}/{partition}/{offset}")
        hdrs.update({"Ssmd-Topic": topic, "Ssmd-Partition": str(partition), "Ssmd-Offset": str(offset),
                     "Ssmd-Error": reason.replace("\r", " ").replace("\n", " ")[:500]})
        ack = await publisher.publish(naming.dlq_subject(self.app.conf.id, topic), value or b"", hdrs)
        await ack
        self.dead_letters += 1

    def layout(self, topic: str) -> TopicLayout | None:
        return self._topology.known(topic)
