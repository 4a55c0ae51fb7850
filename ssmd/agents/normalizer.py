"""The normalizer agent: raw batches -> Trade, OrderBookUpdate, MarketStatus and Gap records.

For each raw ``Batch`` event (one partition's frames in receive order) it runs the
:class:`~ssmd.normalize.normalizer.Normalizer` state machine and sends the records as one ``Batch`` to
the normalized topic, on the same partition, without waiting for the acknowledgement; then it publishes
each record on its public subject ``{env}.kalshi.{type}.{ticker}`` (core NATS, for live subscribers) and
asks the capture for fresh snapshots of tickers whose books need recovery (:mod:`ssmd.capture.resync`:
a call when the capture runs in this worker, a NATS message when it runs in another; repeated until
the snapshot comes).

Per-ticker state (book, sequence positions, open gap) is kept in memory and written to the ``books``
table, co-partitioned with the raw topic, at **checkpoints** (:class:`Checkpoints`), not per event: a
table write is a changelog message through Faust's producer, and writing every touched ticker per raw
event cost more than the normalizing itself. Two orders make a crash (kill -9) lose nothing:

1. *state never ahead of outputs*: a checkpoint first waits until every output sent so far is
   acknowledged, then writes the state. A worker that dies before a checkpoint resumes from the previous
   one and normalizes the same raw events again into the same records, whose deterministic
   ``Nats-Msg-Id`` (input position + send number) lets JetStream drop the copies;
2. *offsets never ahead of state*: raw events are consumed with acks off and acknowledged only once the
   checkpoint that includes them is written, so Faust commits (after flushing the changelog) an offset
   the recovered state covers. The state may be *ahead* of the committed offset (a crash between a
   checkpoint and the next offset commit); the events it already holds are skipped by their offset
   (:meth:`~ssmd.normalize.normalizer.Normalizer.begin`).

A checkpoint runs every ``checkpoint_interval`` seconds (a setting) while events are pending, and at once when a
rebalance suspends the stream (Faust waits until every event taken is acknowledged before it revokes
partitions), so a rebalance waits for one checkpoint, not for the interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any, cast

import msgspec
from mode import Service

from ssmd import codec, names
from ssmd import records as r
from ssmd.agents.holes import StreamHoles
from ssmd.app import FEED
from ssmd.capture import resync
from ssmd.errors import DecodeError
from ssmd.normalize.normalizer import Normalizer, Output
from ssmd.partitioning import partition_for

if TYPE_CHECKING:
    from ssmd.app import AppContext
    from ssmd.transport.producer import Producer

log = logging.getLogger("ssmd.agents.normalizer")

PUBLIC_TYPES: dict[type[Any], str] = {
    r.Trade: "trade",
    r.OrderBookUpdate: "orderbook",
    r.MarketStatus: "status",
    r.Gap: "gap",
}


class PublicSubjects:
    """Publisher of per-ticker records on the seed's public subjects (core NATS, for live subscribers).

    The messages go through the app's producer connection, in the same socket writes as the normalized
    batches they copy: a write of its own per event would cost more than the publishes.
    """

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.published = 0
        self._subjects: dict[tuple[type[Any], str], str] = {}

    async def publish(self, records: list[r.AnyRecord], structs: list[bytes]) -> None:
        """Publish each record (``structs[i]`` is ``records[i]`` encoded with its own struct as root)."""
        producer = cast("Producer", self.ctx.app.producer)  # nats:// (or memory://, for tests)
        known = self._subjects
        subjects: list[str] = []
        payloads: list[bytes] = []
        for rec, payload in zip(records, structs, strict=True):
            subject = known.get((type(rec), rec.ticker))
            if subject is None:
                subject = self._subject(rec)
                if subject is None:
                    continue
            subjects.append(subject)
            payloads.append(payload)
        await producer.publish_core_many(subjects, payloads)
        self.published += len(subjects)

    def _subject(self, rec: r.AnyRecord) -> str | None:
        kind = PUBLIC_TYPES.get(type(rec))
        if not rec.ticker or kind is None:
            return None
        subject = self._subjects[type(rec), rec.ticker] = names.subject(self.ctx.env, FEED, kind, rec.ticker)
        return subject


class BookTable(MutableMapping[str, Any]):
    """The ``books`` table as the normalizer's store: each ``book:{ticker}`` entry on its ticker's partition.

    Faust partitions a table write by the event being handled; a checkpoint writes many partitions'
    tickers at once, so this writes the store and sends the changelog entry to the partition that
    :func:`~ssmd.partitioning.partition_for` gives the ticker (the raw topic's partition, which is what
    makes a rebalanced worker recover exactly its tickers).
    """

    def __init__(self, table: Any, partitions: int) -> None:
        self.table = table
        self.partitions = partitions

    def stash(self, items: dict[str, Any]) -> None:
        """Put the items in the store, without changelog entries yet (:meth:`send_changelog` sends them)."""
        self.table.data.update(items)

    async def send_changelog(self, items: dict[str, Any]) -> None:
        """Send the changelog entries of stashed items straight to the producer.

        Faust's table writes go through its producer buffer, and Faust stops delivering events to every
        agent while that buffer holds more than 100 messages: a checkpoint of many tickers would stall
        the stream. Each entry is serialized exactly as Faust's own write would serialize it.
        """
        for n, (key, value) in enumerate(items.items(), 1):
            await self._send(key, value)
            if n % 8 == 0:
                await asyncio.sleep(0)  # a send rarely suspends: let the agent and the capture in

    async def _send(self, key: str, value: Any) -> None:
        topic = self.table.changelog_topic
        k, headers = topic.prepare_key(key, self.table.key_serializer)
        if self.table.value_serializer == "json":
            v = msgspec.json.encode(value)  # the same JSON, compact, 7x faster than Faust's json codec
        else:
            v, headers = topic.prepare_value(value, self.table.value_serializer, headers=headers)
        await self.table.app.producer.send(topic.get_topic_name(), k, v, self._partition(key), None, headers)

    def _partition(self, key: str) -> int:
        return partition_for(key.removeprefix("book:"), self.partitions)

    def __getitem__(self, key: str) -> Any:
        return self.table.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.table.data[key] = value
        self.table.send_changelog(self._partition(key), key, value)

    def __delitem__(self, key: str) -> None:
        del self.table.data[key]
        self.table.send_changelog(self._partition(key), key, None, value_serializer="raw")

    def __iter__(self) -> Iterator[str]:
        return iter(self.table.data)

    def __len__(self) -> int:
        return len(self.table.data)


class OutputLost(Exception):
    """A normalized batch was refused by the server (or never acknowledged): its records are not stored."""

    def __init__(self, cause: BaseException | None) -> None:
        why = repr(cause) if cause is not None else "the producer stopped before it was acknowledged"
        super().__init__(f"a normalized batch was not stored ({why}); its raw inputs stay unacknowledged")
        self.cause = cause


class Checkpoints(Service):
    """Raw events taken but not yet acknowledged, and the checkpoints that acknowledge them.

    Contract: the agent handles an event under :attr:`lock` and then calls :meth:`handled`. A
    :meth:`checkpoint`, under the same lock, copies the state that includes every event handled so far;
    then, with the lock released so the agent goes on, it waits until every output sent so far is
    acknowledged, writes the copy to the table and acknowledges the events (one checkpoint at a time).

    A partition's state depends only on its own events (every ticker has one partition), so partitions
    are checkpointed one at a time, in turn, each once per ``interval``: the copying and the changelog
    writes of a whole interval would otherwise come in one burst that holds up every frame behind it
    (at 5.9k frames/s, 500 tickers' states in one burst a second gave a p99 of 51 ms, and 41 ms with
    one burst every 5 s).
    """

    def __init__(self, ctx: AppContext, normalizer: Normalizer, table: BookTable, **kw: Any) -> None:
        super().__init__(**kw)
        self.app = ctx.app
        self.normalizer = normalizer
        self.table = table
        self.interval = ctx.settings.checkpoint_interval
        self.partitions = ctx.partitions
        self.lock = asyncio.Lock()
        self._one_at_a_time = asyncio.Lock()
        self._pending: dict[int, list[tuple[Any, Any]]] = {}  # partition: (stream, event) to acknowledge
        self._turn = 0  # the partition whose checkpoint is next
        self.lost: BaseException | None = None
        """Why an output was refused (the first one): its inputs must be normalized again, after a restart."""
        self._unsure = False

    def watch(self, sent: asyncio.Future[Any]) -> None:
        """Track an output sent: one that is refused (or never acknowledged) stops every later checkpoint."""
        sent.add_done_callback(self._output_done)

    def _output_done(self, sent: asyncio.Future[Any]) -> None:
        if sent.cancelled():
            self._unsure = True  # the producer stopped before it was acknowledged
        elif (exc := sent.exception()) is not None and self.lost is None:
            self.lost = exc

    def handled(self, stream: Any, event: Any) -> None:
        self._pending.setdefault(event.message.partition, []).append((stream, event))

    async def checkpoint(self, partition: int | None = None, *, forget: bool = False) -> None:
        """Outputs acknowledged, then state written, then inputs acknowledged, of ``partition`` (None:
        all); ``forget``: drop the cache.

        The state is copied under :attr:`lock` (no event is half-handled then: every output of the events
        it includes has been handed to the producer); the wait for acknowledgements and the writes happen
        with the lock released, so the agent goes on meanwhile. On a failure nothing is lost: the copied
        entries are marked dirty again and the events stay pending for the next checkpoint.
        """
        async with self._one_at_a_time:
            async with self.lock:
                if partition is None:
                    pending = [e for events in self._pending.values() for e in events]
                    self._pending.clear()
                    states = self.normalizer.snapshot()
                else:
                    pending = self._pending.pop(partition, [])
                    states = self.normalizer.snapshot(lambda t: partition_for(t, self.partitions) == partition)
                self.table.stash(states)  # the store may run ahead of the changelog, never behind
                if forget:
                    self.normalizer.forget()
            if not pending and not states:
                return
            try:
                await self.app.producer.flush()  # waits for what was sent before the call: all of it
                self._check_outputs()
                await self.table.send_changelog(states)
            except Exception:
                self.normalizer.mark_dirty(states)
                self._put_back(pending)
                raise
            for n, (stream, event) in enumerate(pending, 1):
                await stream.ack(event)
                if n % 64 == 0:
                    await asyncio.sleep(0)  # hundreds of events per checkpoint: let frames in meanwhile

    def _check_outputs(self) -> None:
        """Raise :class:`OutputLost` once any output was refused or dropped unacknowledged.

        Its records are not stored, so neither the state that includes them nor the acknowledgement of
        their inputs may be: the last checkpoint before it stays the one a restart resumes from, and
        the restarted worker normalizes those inputs again (JetStream drops the copies of what was stored).
        """
        if self.lost is not None or self._unsure:
            raise OutputLost(self.lost)

    @Service.task
    async def _tick(self) -> None:
        every = self.interval / self.partitions
        turn_at = time.monotonic() + every
        while not self.should_stop:
            await self.sleep(min(0.05, every))
            if not self._pending or self._one_at_a_time.locked():
                continue
            partition: int | None = None  # a rebalance waits for every event taken: all partitions at once
            if self.app.flow_control.is_active():
                if time.monotonic() < turn_at:
                    continue
                turn_at = max(turn_at + every, time.monotonic())
                partition, self._turn = self._turn, (self._turn + 1) % self.partitions
                if partition not in self._pending:
                    continue
            try:
                await self.checkpoint(partition)
            except OutputLost as e:
                # Going on would leave those records out for good: stop, so a restart normalizes them again.
                log.critical("%s; stopping the worker", e)
                await self.crash(e)
                return
            except Exception as e:  # e.g. the changelog unreachable for a moment: retried next time
                log.error("normalizer checkpoint failed (retried): %r", e)

    def _put_back(self, pending: list[tuple[Any, Any]]) -> None:
        """Make ``pending`` the first events to acknowledge again, in their order (a failed checkpoint)."""
        back: dict[int, list[tuple[Any, Any]]] = {}
        for stream, event in pending:
            back.setdefault(event.message.partition, []).append((stream, event))
        for partition, events in back.items():
            self._pending[partition] = events + self._pending.get(partition, [])


def install(ctx: AppContext) -> None:
    app = ctx.app
    books = app.Table("books", default=None, partitions=ctx.partitions)
    table = BookTable(books, ctx.partitions)

    def is_local(connection_id: int | None) -> bool:
        capture = ctx.services.get("capture")
        return capture is not None and connection_id in capture.core.local_connections

    normalizer = Normalizer(table, is_local)
    ctx.services["normalizer"] = normalizer

    async def ask_snapshots(tickers: set[str]) -> None:
        capture = ctx.services.get("capture")
        if capture is not None:
            capture.resync(tickers)
        else:  # the capture runs in another worker: ask it over NATS
            subjects = resync.subjects(ctx.env, FEED, sorted(tickers))
            await cast("Producer", app.producer).publish_core_many(subjects, [b""] * len(subjects))

    resyncs = resync.ResyncRequests(ask_snapshots, normalizer.open_gap, loop=app.loop, beacon=app.beacon)
    ctx.services["resyncs"] = resyncs
    app.add_dependency(resyncs)
    public = PublicSubjects(ctx)
    ctx.services["public"] = public
    checkpoints = Checkpoints(ctx, normalizer, table, loop=app.loop, beacon=app.beacon)
    ctx.services["checkpoints"] = checkpoints
    app.add_dependency(checkpoints)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _forget(sender: Any, *args: Any, **kw: Any) -> None:
        # Another worker may change these tickers' state before the partitions come back: write what
        # is pending (normally nothing: Faust waited for every event to be acknowledged), then forget.
        await checkpoints.checkpoint(forget=True)

    @app.agent(ctx.raw, name="normalizer")
    async def normalize(stream: Any) -> None:
        manual = stream.noack()
        holes = StreamHoles(app, ctx.raw.get_topic_name())
        async for event in manual.events():
            async with checkpoints.lock:
                await _handle(event, holes)
                checkpoints.handled(manual, event)

    async def _handle(event: Any, holes: StreamHoles) -> None:
        partition = event.message.partition
        capture = ctx.services.get("capture")
        frames = capture.handoff.take(event.value) if capture is not None else None
        if frames is None:
            try:
                frames = codec.decode_batch(event.value)
            except DecodeError as e:
                log.error("undecodable raw batch at partition %d offset %d: %s", partition, event.message.offset, e)
                return
        out = Output()
        normalizer.begin(event.message.offset)
        if removed := holes.take(partition, "a bus gap for every ticker of the partition"):
            tickers = [t for t in normalizer.tickers() if partition_for(t, ctx.partitions) == partition]
            for first, end in removed:
                normalizer.bus_gap(tickers, first, end, holes.stream, time.time_ns(), out)
        for frame in frames:
            if isinstance(frame, r.RawFrame):
                normalizer.process(frame, out)
        if out.records:
            # One encoding gives both the batch and each record's public-subject message.
            batch, structs = codec.encode_batch_and_structs(out.records)
            checkpoints.watch(await ctx.normalized.send_value(batch, partition))
            await public.publish(out.records, structs)
        if out.resync:
            await resyncs.request(out.resync)
