"""Reading one topic partition: an ephemeral JetStream pull consumer driven by hand.

Each assigned, unpaused partition has an ephemeral consumer (``AckPolicy.NONE``: progress is the
committed offset in KV, not JetStream acks) filtered to that partition's subject and started at
the read position. Pull requests go out on one core subscription per consumer, at most two in
flight, and deliveries arrive raw (:mod:`.fastsub`): the ``$JS.ACK`` reply subject gives the
stream sequence, store time and pending count, and the header block is kept undecoded until
``_to_message``, which costs far less than ``nats-py``'s ``fetch``.
A seek drops the consumer and everything buffered; the next :meth:`pump` creates a
new one at the new position. A consumer the server deleted (inactivity while paused, a restart)
is recreated at the position after the last delivered message, so nothing is skipped.

Holes: a stream whose limits (``max_age``, ``max_bytes``) or a purge removed messages this reader had
not delivered yet skips them without a word (a consumer starts at the first message still stored).
Whenever the reader learns the stream's first sequence (when it creates its consumer, and from
:meth:`PartitionReader.check_first_seq`) and its read position is below it, the range is recorded in
:attr:`PartitionReader.holes`. A partition shares its stream with the others and offsets are stream
sequences, so whether the removed range held this partition's messages cannot be told any more: the
hole is reported for every partition whose position it passed (conservative; with every partition
active, as capture partitions are, each of them did lose messages).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from .envelope import status_of
from .fastsub import subscribe_direct
from .streams import TopicLayout

log = logging.getLogger(__name__)

_PULL_EXPIRES_NS = 5_000_000_000
_INACTIVE_THRESHOLD = 120.0
_HOLES_KEPT = 16


@dataclass(slots=True)
class Record:
    """One stored message of a partition, as delivered (see :func:`.envelope.decode`)."""

    seq: int
    subject: bytes
    headers: bytes | None  # the raw header block
    data: bytes
    stored_ns: int


def parse_ack_subject(reply: bytes) -> tuple[int, int, int] | None:
    """``(stream seq, store time ns, pending)`` from a ``$JS.ACK`` reply subject (v1 or v2 form)."""
    t = reply.split(b".")
    if len(t) == 9:
        return int(t[5]), int(t[7]), int(t[8])
    if len(t) >= 11:
        return int(t[7]), int(t[9]), int(t[10])
    return None


class PartitionReader:
    """Fetches one partition from ``position`` on; see the module docstring."""

    def __init__(self, nc: NATS, js: JetStreamContext, layout: TopicLayout, partition: int, *,
                 batch: int, on_data: Callable[[], None]) -> None:
        self._nc = nc
        self._js = js
        self.layout = layout
        self.partition = partition
        self._batch = batch
        self._on_data = on_data
        self.position = 0  # next stream sequence to deliver; 0 means from the first message
        self.highwater = 0  # estimate for monitoring: last delivered seq + pending + 1
        self.floor: int | None = None  # first sequence delivered since the last seek
        self.buffer: deque[Record] = deque()
        self._consumer: str | None = None
        self._sub: Subscription | None = None
        self._inbox = ""
        self._requests: deque[int] = deque()
        self._broken = False
        self._lock = asyncio.Lock()
        self.holes: list[tuple[int, int]] = []
        """Stream sequence ranges ``[first, end)`` removed before this reader delivered them (see above)."""
        self._holes_to = 0  # end of the last hole recorded: a range is reported once

    async def seek(self, offset: int) -> None:
        """Deliver from stream sequence ``offset`` on (``<= 0``: from the beginning)."""
        async with self._lock:
            await self._drop()
            self.position = max(offset, 0)
            self.floor = None

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    def mark_broken(self) -> None:
        """Recreate the consumer (at :attr:`position`) on the next :meth:`pump`."""
        self._broken = True

    def wants_pump(self) -> bool:
        """Cheap check: would :meth:`pump` do anything (create a consumer, send a pull)?"""
        return (self._broken or self._consumer is None or (len(self._requests) < 2
                and len(self.buffer) + sum(self._requests) < 2 * self._batch))

    async def pump(self) -> None:
        """Make sure a pull request is outstanding while the buffer has room."""
        if self._broken or self._consumer is None:
            async with self._lock:
                if self._broken:
                    await self._drop()
                if self._consumer is None:
                    await self._create()
        while len(self._requests) < 2 and len(self.buffer) + sum(self._requests) < 2 * self._batch:
            self._requests.append(self._batch)
            body = json.dumps({"batch": self._batch, "expires": _PULL_EXPIRES_NS}).encode()
            await self._nc.publish(
                f"$JS.API.CONSUMER.MSG.NEXT.{self.layout.stream}.{self._consumer}", body, reply=self._inbox
            )

    def check_first_seq(self, first_seq: int) -> None:
        """Record a hole if the stream, whose first message is now ``first_seq``, removed unread ones.

        Only a reader with a read position (a committed offset or a delivery) can miss anything; one
        reading from the beginning (position 0) starts at whatever the stream holds.
        """
        start = max(self.position, self._holes_to)
        if self.position <= 0 or first_seq <= start or self.layout.compacting:
            return  # a compacted stream drops overwritten values by design: nothing is lost
        holes = self.holes
        if holes and holes[-1][1] == start:
            holes[-1] = (holes[-1][0], first_seq)
        elif len(holes) >= _HOLES_KEPT:  # nobody takes them (an agent that does not ask): one span
            holes[:] = [(holes[0][0], first_seq)]
        else:
            holes.append((start, first_seq))
        self._holes_to = first_seq
        log.warning("%s/%d: stream %s no longer holds sequences %d..%d, not yet read",
                    self.layout.topic, self.partition, self.layout.stream, start, first_seq - 1)

    def take(self, limit: int) -> list[Record]:
        buf = self.buffer
        n = min(limit, len(buf))
        return [buf.popleft() for _ in range(n)]

    async def _create(self) -> None:
        if self.position > 0:
            stream = await self._js.stream_info(self.layout.stream)
            self.check_first_seq(stream.state.first_seq)
        cfg = ConsumerConfig(
            filter_subject=self.layout.filter_subject(self.partition),
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if self.position > 0 else DeliverPolicy.ALL,
            opt_start_seq=self.position if self.position > 0 else None,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=_INACTIVE_THRESHOLD,
            mem_storage=True,
            num_replicas=1,
        )
        info = await self._js.add_consumer(self.layout.stream, cfg)
        inbox = self._nc.new_inbox()

        def deliver(subject: bytes, reply: bytes, headers: bytes | None, data: bytes) -> None:
            if self._inbox == inbox:
                self._on_msg(subject, reply, headers, data)

        self._sub = await subscribe_direct(self._nc, inbox, deliver)
        self._inbox = inbox
        self._consumer = info.name
        self._broken = False

    async def _drop(self) -> None:
        self.buffer.clear()
        self._requests.clear()
        self._inbox = ""
        sub, self._sub = self._sub, None
        name, self._consumer = self._consumer, None
        self._broken = False
        if sub is not None and not self._nc.is_closed:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # the connection is going away; nothing to clean
                log.debug("unsubscribe failed: %r", exc)
        if name is not None and self._nc.is_connected:
            try:
                await self._js.delete_consumer(self.layout.stream, name)
            except Exception as exc:  # it expires on its own (inactive_threshold)
                log.debug("delete consumer %s failed: %r", name, exc)

    def _on_msg(self, subject: bytes, reply: bytes, headers: bytes | None, data: bytes) -> None:
        if not reply:
            self._on_status(headers)
            return
        meta = parse_ack_subject(reply)
        if meta is None:
            return
        seq, stored_ns, pending = meta
        if seq < self.position:
            return
        self.position = seq + 1
        self.highwater = seq + pending + 1
        if self.floor is None:
            self.floor = seq
        self.buffer.append(Record(seq, subject, headers, data, stored_ns))
        requests = self._requests
        if requests:
            requests[0] -= 1
            if requests[0] <= 0:
                requests.popleft()
        self._on_data()

    def _on_status(self, headers: bytes | None) -> None:
        status, desc = status_of(headers)
        if status == "100":
            return
        if self._requests:
            self._requests.popleft()
        if status in ("409", "503") or (status.startswith("4") and status not in ("404", "408")):
            log.info("pull consumer on %s/%d ended (%s %s); recreating at %d",
                     self.layout.topic, self.partition, status, desc, self.position)
            self._broken = True
        self._on_data()
