"""Faust's consumer contract on JetStream (see ``reference/faust-nats-transport.md`` section 2.1).

* Offsets are stream sequences; a topic's partitions share one stream, so a partition's offsets
  are sparse. Faust's gap bookkeeping accepts that (``_drain_messages`` records the jumps).
* Committed offsets live in KV (:mod:`.offsets`), written after the producer has flushed, so an
  input is committed only once its outputs are acknowledged: at-least-once, duplicates bounded by
  what was in flight when a worker died.
* ``highwaters()`` is exact (last sequence of the partition + 1, or 0 when empty): table recovery
  depends on it. ``highwater()`` (called per message) is the estimate from the last delivery,
  ``seq + pending + 1``, so ``highwater - offset - 1`` is the real number of messages behind.
* The driver drives rebalances itself: the group protocol (:mod:`.membership`) hands it an
  assignment and :meth:`_rebalance` runs Faust's revoke/assign sequence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment  # type: ignore[import-untyped]
from faust.assignor.client_assignment import ClientAssignment
from faust.types import TP, ConsumerMessage
from mode import Service
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from . import envelope, keys
from .commits import CommitsAfterWaiting
from .connection import NATS_ERRORS, close, connect, new_member_id
from .delivery import DeliversEagerly
from .membership import GroupMember
from .offsets import OffsetStore
from .options import NatsOptions
from .reader import PartitionReader, Record
from .sparse import add_gap, new_offset
from .streams import TopicLayout
from .topology import Topology

log = logging.getLogger(__name__)

_HOLE_CHECK_EVERY = 5.0  # seconds between checks of the streams' first messages (one request per stream)



class Consumer(CommitsAfterWaiting, DeliversEagerly):
    """The ``nats://`` consumer: one per worker, reading every assigned partition."""

    _nc: NATS | None = None
    _js: JetStreamContext | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gap: Any = defaultdict(list)
        self._opts: NatsOptions = self.transport.options  # type: ignore[attr-defined]
        self._topology: Topology = self.transport.topology  # type: ignore[attr-defined]
        self._assigned: set[TP] = set()
        self._readers: dict[TP, PartitionReader] = {}
        self._positioned: set[TP] = set()
        """Assigned partitions whose read position is decided (by a seek, or by reading the commits).

        Faust 0.15.3 resumes stream partitions before it seeks them to their committed offsets, with
        awaits in between (the commits are read from KV), so the fetcher could start a partition
        from its first message and hand Faust a whole partition again after a restart; a partition
        is fetched only once it is in this set."""
        self._data = asyncio.Event()
        self._member_id = new_member_id()
        self._member: GroupMember | None = None
        self._offsets: OffsetStore | None = None
        self._next_assignment: tuple[int, ConsumerProtocolMemberAssignment | None] | None = None
        self._assignment_ready = asyncio.Event()
        self._last_outage_log = 0.0
        self._max_take = max(1, self.app.conf.broker_max_poll_records or 4 * self._opts.fetch_batch)
        self._holes_checked = time.monotonic()

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            msg = "nats consumer is not started"
            raise RuntimeError(msg)
        return self._js

    async def on_start(self) -> None:
        self._nc = await connect(self._opts, "consumer")
        self._js = self._nc.jetstream()
        self._offsets = OffsetStore(self._js, self.app.conf.id)
        self._member = GroupMember(
            self._js, self.app, self._member_id,
            heartbeat=self._opts.heartbeat, session_timeout=self._opts.session_timeout,
            partitions_of=self._partitions_of, on_assignment=self._on_assignment,
        )
        await self._member.start()

    async def on_stop(self) -> None:
        await super().on_stop()  # waits for agents and commits
        if self._member is not None:
            await self._member.stop()
        for reader in list(self._readers.values()):
            await reader.close()
        self._readers.clear()
        if self._nc is not None:
            await close(self._nc, "consumer")

    # --- group membership and rebalancing ------------------------------------------------------

    async def subscribe(self, topics: Iterable[str]) -> None:
        """Create or verify every topic's stream, then (re)join the group with this subscription."""
        names = frozenset(topics)
        for topic in sorted(names):
            for attempt in range(120):
                try:
                    await self._topology.ensure(self.js, topic)
                    break
                except NATS_ERRORS as exc:  # unreachable for now: retry for a minute, then fail
                    if attempt == 119:
                        raise
                    self._log_outage("creating the stream of %r: %r", topic, exc)
                    await asyncio.sleep(0.5)
        assert self._member is not None
        self._member.set_topics(names)

    async def _partitions_of(self, topic: str) -> int | None:
        layout = self._topology.known(topic)
        if layout is not None:
            return layout.partitions
        return (await self._topology.for_send(self.js, topic)).partitions

    def _on_assignment(self, generation: int, assignment: ConsumerProtocolMemberAssignment | None) -> None:
        self._next_assignment = (generation, assignment)
        self._assignment_ready.set()

    @Service.task
    async def _rebalancer(self) -> None:
        while not self.should_stop:
            await self.wait(self._assignment_ready)  # type: ignore[arg-type]
            self._assignment_ready.clear()
            pending, self._next_assignment = self._next_assignment, None
            if pending is None or self.should_stop:
                continue
            try:
                await self._rebalance(*pending)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("rebalance to generation %d failed", pending[0])
                await self.crash(exc)
                return

    async def _rebalance(self, generation: int, assignment: ConsumerProtocolMemberAssignment | None) -> None:
        """Faust's eager rebalance: revoke everything, then assign the new set (section 2.2)."""
        app = self.app
        new = {TP(t, p) for t, ps in assignment.assignment for p in ps} if assignment else set()
        log.info("rebalance to generation %d: %d partitions", generation, len(new))
        app.on_rebalance_start()
        # The previous generation ends here. A table recovery of it may still be finishing (a
        # rebalance right after another): Faust's recovery resumes the streams unless the app's
        # generation has moved on, and would undo the revocation below, so this worker went on
        # processing partitions another member was already recovering. With the generation moved
        # on it stops instead, events of the old generation still buffered are skipped (Faust
        # checks each one), and nothing is fetched until the new assignment's positions are known.
        app.consumer_generation_id = generation
        self._positioned.clear()
        # Faust forgets uncommitted acks of revoked partitions; commit them first so the new
        # owner re-reads only what was still in flight.
        await self.commit()
        revoked = set(self._assigned)
        await self.on_partitions_revoked(revoked)
        for tp in revoked:
            reader = self._readers.pop(tp, None)
            if reader is not None:
                await reader.close()
        assert self._offsets is not None
        self._offsets.forget(revoked)
        assert self._member is not None
        await self._member.revoked(generation)
        await self._member.barrier(generation)
        self._assigned = new
        app.consumer_generation_id = generation
        assignor: Any = app.assignor
        if assignment is not None:
            assignor.on_assignment(assignment)
        else:
            assignor._assignment = ClientAssignment(actives={}, standbys={})
            assignor._active_tps = set()
            assignor._standby_tps = set()
        await self.on_partitions_assigned(new, generation)

    def assignment(self) -> set[TP]:
        return set(self._assigned)

    # --- commit bookkeeping for sparse offsets (see .sparse) ---------------------------------------

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        add_gap(self._gap[tp], self._committed_offset[tp], offset_from, offset_to)

    def _new_offset(self, tp: TP) -> int | None:
        reader = self._readers.get(tp)
        return new_offset(self._acked[tp], self._acked_index[tp], self._gap[tp], self._committed_offset[tp],
                          reader.floor if reader is not None else None)

    # --- fetching ------------------------------------------------------------------------------

    def _reader(self, tp: TP) -> PartitionReader:
        reader = self._readers.get(tp)
        if reader is None:
            layout = self._layout(tp.topic)
            assert self._nc is not None
            reader = PartitionReader(self._nc, self.js, layout, tp.partition,
                                     batch=self._opts.fetch_batch, on_data=self._data.set)
            self._readers[tp] = reader
        return reader

    def _layout(self, topic: str) -> TopicLayout:
        layout = self._topology.known(topic)
        if layout is None:
            msg = f"topic {topic!r} has no layout; it was never subscribed or declared"
            raise RuntimeError(msg)
        return layout

    async def _getmany(
        self, active_partitions: set[TP] | None, timeout: float  # noqa: ASYNC109 - Faust's signature
    ) -> Mapping[TP, list[Any]]:
        if not active_partitions:
            await asyncio.sleep(min(timeout, 0.1))
            return {}
        positioned = self._positioned
        readers = [(tp, self._reader(tp)) for tp in active_partitions if tp in positioned and tp in self._assigned]
        failed = False
        for _, reader in readers:
            if reader.wants_pump():
                try:
                    await reader.pump()
                except NATS_ERRORS as exc:
                    # NATS is unreachable or restarting: keep the worker alive, retry next round.
                    failed = True
                    reader.mark_broken()
                    self._log_outage("fetching %s/%d: %r", reader.layout.topic, reader.partition, exc)
        if time.monotonic() - self._holes_checked >= _HOLE_CHECK_EVERY:
            await self._check_holes(readers)
        batch = self._take(readers)
        if failed and not batch:
            await asyncio.sleep(min(timeout, 0.5))
            return {}
        if not batch:
            self._data.clear()
            try:
                async with asyncio.timeout(timeout):  # not wait_for: no task per wait
                    await self._data.wait()
            except TimeoutError:
                return {}
            batch = self._take(readers)
        return batch

    # ``_getmany`` waits for data on the partitions Faust asked for; when Faust makes another one
    # active again (its stream buffer drained, recovery resumed it), wake it so the next round
    # reads that partition at once. Without this the fetcher slept out its whole timeout (1 s)
    # with records buffered for the partition just made active.
    def on_buffer_drop(self, tp: TP) -> None:
        super().on_buffer_drop(tp)
        self._data.set()

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        super().resume_partitions(tps)
        self._data.set()

    async def _check_holes(self, readers: list[tuple[TP, PartitionReader]]) -> None:
        """Let each reader compare its position with its stream's first message (see ``reader``)."""
        self._holes_checked = time.monotonic()
        streams: dict[str, list[PartitionReader]] = {}
        for _, reader in readers:
            streams.setdefault(reader.layout.stream, []).append(reader)
        for stream, group in streams.items():
            try:
                info = await self.js.stream_info(stream)
            except NATS_ERRORS as exc:  # checked again next time
                log.debug("stream info of %s: %r", stream, exc)
                continue
            for reader in group:
                reader.check_first_seq(info.state.first_seq)

    def take_holes(self, tp: TP) -> list[tuple[int, int]]:
        """The stream sequence ranges of ``tp`` removed before they were read, since the last call.

        An agent that keeps per-key state from a partition calls this with each event: the state
        missed whatever those ranges held (a bus gap).
        """
        reader = self._readers.get(tp)
        if reader is None or not reader.holes:
            return []
        holes, reader.holes = reader.holes, []
        return holes

    def _take(self, readers: list[tuple[TP, PartitionReader]]) -> dict[TP, list[Any]]:
        return {tp: r.take(self._max_take) for tp, r in readers if r.buffer}

    def _to_message(self, tp: TP, record: Record) -> ConsumerMessage:
        has_key, key, value, timestamp, headers = envelope.decode(record.headers, record.data, record.stored_ns)
        if not has_key:
            layout = self._topology.layouts.get(tp.topic)
            if layout is not None and layout.public:
                key = keys.key_from_token(record.subject.rsplit(b".", 1)[-1].decode())
        return ConsumerMessage(
            tp.topic, tp.partition, record.seq, timestamp, 0, headers, key, value, None,
            len(key) if key else 0, len(value) if value else 0, tp,
            generation_id=self.app.consumer_generation_id,
        )

    def _new_topicpartition(self, topic: str, partition: int) -> TP:
        return TP(topic, partition)

    # --- positions and offsets -----------------------------------------------------------------

    async def _seek(self, partition: TP, offset: int) -> None:
        reader = self._reader(partition)
        if reader.position != offset or reader.buffer:
            await reader.seek(offset)
        self._position_decided([partition])

    def _position_decided(self, tps: Iterable[TP]) -> None:
        self._positioned.update(tp for tp in tps if tp in self._assigned)
        self._data.set()  # a fetcher waiting for data may now read these

    async def seek_to_committed(self) -> Mapping[TP, int]:
        assert self._offsets is not None
        committed = await self._offsets.read(self._assigned)
        result = {tp: off for tp, off in committed.items() if off is not None}
        for tp, off in result.items():
            await self._seek(tp, off)
        if self.app.conf.consumer_auto_offset_reset == "latest":
            # Never committed and never read: start after what the partition holds now.
            fresh = [tp for tp, off in committed.items() if off is None and not self._read_offset.get(tp)]
            for tp, end in (await self.highwaters(*fresh)).items():
                await self._seek(tp, end)
        self._position_decided(committed)  # never committed, reset "earliest": the first message
        return result

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        for tp, offset in partitions.items():
            await self._reader(tp).seek(offset)
            if offset > 0:
                self._read_offset[tp] = offset
            else:
                self._read_offset.pop(tp, None)
        self._position_decided(partitions)

    async def position(self, tp: TP) -> int | None:
        reader = self._readers.get(tp)
        return reader.position if reader is not None else None

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        assert self._offsets is not None
        try:
            return await self._offsets.commit(offsets, self.app.consumer_generation_id)
        except NATS_ERRORS as exc:
            # Not committed: these offsets (or later ones) are committed next time.
            self._log_outage("committing offsets: %r", exc)
            return False

    def _log_outage(self, what: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last_outage_log > 5.0:
            self._last_outage_log = now
            log.warning("NATS unavailable while " + what, *args)

    def highwater(self, tp: TP) -> int:
        reader = self._readers.get(tp)
        return reader.highwater if reader is not None else 0

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        results = await asyncio.gather(*(self._last_seq(tp) for tp in partitions))
        return {tp: (last + 1 if last else 0) for tp, last in zip(partitions, results, strict=True)}

    async def earliest_offsets(self, *partitions: TP) -> Mapping[TP, int]:
        results = await asyncio.gather(*(self._first_seq(tp) for tp in partitions))
        return {tp: first for tp, first in zip(partitions, results, strict=True)}

    async def _last_seq(self, tp: TP) -> int:
        layout = self._layout(tp.topic)
        try:
            msg = await self.js.get_last_msg(layout.stream, layout.filter_subject(tp.partition))
        except NotFoundError:
            return 0
        seq = int(msg.seq or 0)
        reader = self._readers.get(tp)
        if reader is not None and seq + 1 > reader.highwater:
            reader.highwater = seq + 1
        return seq

    async def _first_seq(self, tp: TP) -> int:
        layout = self._layout(tp.topic)
        try:
            msg = await self.js.get_msg(layout.stream, seq=1, subject=layout.filter_subject(tp.partition),
                                        next=True)
        except NotFoundError:
            last = await self._last_seq(tp)
            return last + 1 if last else 0
        return int(msg.seq or 0)

    # --- topics --------------------------------------------------------------------------------

    def topic_partitions(self, topic: str) -> int | None:
        layout = self._topology.known(topic)
        return layout.partitions if layout is not None else None

    def key_partition(self, topic: str, key: bytes | None, partition: int | None = None) -> int | None:
        if partition is not None:
            return partition
        n = self.topic_partitions(topic)
        return None if n is None else keys.partition_for(key, n)

    async def create_topic(self, topic: str, partitions: int, replication: int, **kwargs: Any) -> None:
        await self.app.producer.create_topic(topic, partitions, replication, **kwargs)
