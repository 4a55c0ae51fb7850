"""A trivial in-memory Faust transport (``memory://[name]``) for unit tests and benchmarks.

One process, one worker: the consumer assigns itself every partition of every subscribed topic
(one rebalance per subscription change), so agents, tables, windows and timers run exactly as
under a real worker. Logs live in a module-level :class:`Broker` per URL host (``memory://`` is
``default``), offsets are contiguous from 0, and committed offsets survive an app restart within
the process, which makes restart-and-recover tests possible. Nothing is compacted and nothing is
shared between processes. Sends resolve at once; this transport measures Faust alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from faust.transport import base
from faust.transport import producer as base_producer
from faust.types import TP, AppT, ConsumerMessage, RecordMetadata, TopicT
from faust.types.core import HeadersArg
from mode import Service
from yarl import URL

from . import keys
from .commits import CommitsAfterWaiting
from .delivery import DeliversEagerly


@dataclass(slots=True)
class Entry:
    key: bytes | None
    value: bytes | None
    timestamp: float
    headers: Any


@dataclass
class Broker:
    """The logs and committed offsets of one ``memory://name``."""

    logs: dict[str, list[list[Entry]]] = field(default_factory=dict)
    committed: dict[tuple[str, TP], int] = field(default_factory=dict)
    listeners: set[Callable[[], None]] = field(default_factory=set)

    def create(self, topic: str, partitions: int) -> list[list[Entry]]:
        log = self.logs.get(topic)
        if log is None:
            log = self.logs[topic] = [[] for _ in range(partitions)]
        return log

    def append(self, topic: str, partition: int, entry: Entry, default_partitions: int) -> int:
        log = self.logs.get(topic) or self.create(topic, default_partitions)
        part = log[partition]
        part.append(entry)
        for notify in self.listeners:
            notify()
        return len(part) - 1


_BROKERS: dict[str, Broker] = {}


def broker(name: str = "default") -> Broker:
    """The broker behind ``memory://name`` (created on first use)."""
    return _BROKERS.setdefault(name, Broker())


def reset(name: str | None = None) -> None:
    """Forget one broker's (or every broker's) logs and offsets."""
    if name is None:
        _BROKERS.clear()
    else:
        _BROKERS.pop(name, None)


def _partitions(app: AppT, topic: str) -> int:
    for t in list(app.topics):
        if isinstance(t, TopicT) and topic in t.topics and t.partitions:
            return int(t.partitions)
    return int(app.conf.topic_partitions)


class Consumer(CommitsAfterWaiting, DeliversEagerly):
    """Single-worker consumer over a :class:`Broker`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._broker: Broker = self.transport.broker  # type: ignore[attr-defined]
        self._assigned: set[TP] = set()
        self._position: dict[TP, int] = {}
        self._data = asyncio.Event()
        self._generation = 0
        self._pending: frozenset[str] | None = None
        self._wake = asyncio.Event()

    async def on_start(self) -> None:
        self._broker.listeners.add(self._data.set)

    async def on_stop(self) -> None:
        await super().on_stop()
        self._broker.listeners.discard(self._data.set)

    async def subscribe(self, topics: Iterable[str]) -> None:
        names = frozenset(topics)
        for t in names:
            self._broker.create(t, _partitions(self.app, t))
        self._pending = names
        self._wake.set()

    @Service.task
    async def _rebalancer(self) -> None:
        while not self.should_stop:
            await self.wait(self._wake)  # type: ignore[arg-type]
            self._wake.clear()
            names, self._pending = self._pending, None
            if names is not None:
                await self._rebalance(names)

    async def _rebalance(self, names: frozenset[str]) -> None:
        from faust.assignor.client_assignment import ClientAssignment

        app = self.app
        new = {TP(t, p) for t in names for p in range(len(self._broker.logs[t]))}
        app.on_rebalance_start()
        await self.on_partitions_revoked(set(self._assigned))
        self._assigned = new
        self._generation += 1
        app.consumer_generation_id = self._generation
        assignor: Any = app.assignor
        actives: dict[str, list[int]] = {}
        for tp in new:
            actives.setdefault(tp.topic, []).append(tp.partition)
        assignor._assignment = ClientAssignment(actives=actives, standbys={})
        assignor._active_tps = set(new)
        assignor._standby_tps = set()
        assignor._topic_groups = {t: 0 for t in names}
        await self.on_partitions_assigned(new, self._generation)

    def assignment(self) -> set[TP]:
        return set(self._assigned)

    async def _getmany(
        self, active_partitions: set[TP] | None, timeout: float  # noqa: ASYNC109 - Faust's signature
    ) -> Mapping[TP, list[Any]]:
        batch = self._take(active_partitions or set())
        if not batch:
            self._data.clear()
            try:
                async with asyncio.timeout(timeout):  # not wait_for: no task per wait
                    await self._data.wait()
            except TimeoutError:
                return {}
            batch = self._take(active_partitions or set())
        return batch

    def _take(self, tps: set[TP]) -> dict[TP, list[Any]]:
        out: dict[TP, list[Any]] = {}
        logs = self._broker.logs
        for tp in tps:
            part = logs[tp.topic][tp.partition]
            pos = self._position.get(tp, 0)
            if pos < len(part):
                end = min(len(part), pos + 1000)
                out[tp] = [(o, part[o]) for o in range(pos, end)]
                self._position[tp] = end
        return out

    def _to_message(self, tp: TP, record: tuple[int, Entry]) -> ConsumerMessage:
        offset, e = record
        return ConsumerMessage(tp.topic, tp.partition, offset, e.timestamp, 0, e.headers, e.key, e.value,
                               None, len(e.key) if e.key else 0, len(e.value) if e.value else 0, tp,
                               generation_id=self.app.consumer_generation_id)

    def _new_topicpartition(self, topic: str, partition: int) -> TP:
        return TP(topic, partition)

    async def _seek(self, partition: TP, offset: int) -> None:
        self._position[partition] = max(offset, 0)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        group = self.app.conf.id
        out = {tp: self._broker.committed[(group, tp)] for tp in self._assigned
               if (group, tp) in self._broker.committed}
        for tp, off in out.items():
            self._position[tp] = off
        return out

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        for tp, offset in partitions.items():
            self._position[tp] = max(offset, 0)
            if offset > 0:
                self._read_offset[tp] = offset
            else:
                self._read_offset.pop(tp, None)

    async def position(self, tp: TP) -> int | None:
        return self._position.get(tp)

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        for tp, off in offsets.items():
            self._broker.committed[(self.app.conf.id, tp)] = off
        return True

    def highwater(self, tp: TP) -> int:
        return len(self._broker.logs[tp.topic][tp.partition])

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        return {tp: self.highwater(tp) for tp in partitions}

    async def earliest_offsets(self, *partitions: TP) -> Mapping[TP, int]:
        return {tp: 0 for tp in partitions}

    def topic_partitions(self, topic: str) -> int | None:
        log = self._broker.logs.get(topic)
        return len(log) if log is not None else None

    def key_partition(self, topic: str, key: bytes | None, partition: int | None = None) -> int | None:
        if partition is not None:
            return partition
        n = self.topic_partitions(topic)
        return None if n is None else keys.partition_for(key, n)

    async def create_topic(self, topic: str, partitions: int, replication: int, **kwargs: Any) -> None:
        self._broker.create(topic, partitions)


class Producer(base_producer.Producer):
    """Appends to the :class:`Broker`; every send is acknowledged at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._broker: Broker = self.transport.broker  # type: ignore[attr-defined]
        self.dead_letters: list[tuple[str, int, int, bytes | None, bytes | None, str]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None,
                   timestamp: float | None, headers: HeadersArg | None, *,
                   transactional_id: str | None = None) -> asyncio.Future[RecordMetadata]:
        n = len(self._broker.logs[topic]) if topic in self._broker.logs else _partitions(self.app, topic)
        if partition is None:
            partition = keys.partition_for(key, n)
        ts = timestamp if timestamp is not None else asyncio.get_running_loop().time()
        offset = self._broker.append(topic, partition, Entry(key, value, ts, headers), n)
        fut: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        fut.set_result(RecordMetadata(topic=topic, partition=partition, topic_partition=TP(topic, partition),
                                      offset=offset, timestamp=ts, timestamp_type=0))
        return fut

    async def send_and_wait(self, topic: str, key: bytes | None, value: bytes | None,
                            partition: int | None, timestamp: float | None, headers: HeadersArg | None,
                            *, transactional_id: str | None = None) -> RecordMetadata:
        return await (await self.send(topic, key, value, partition, timestamp, headers))

    async def publish_core_many(self, subjects: Sequence[str], payloads: Sequence[bytes]) -> None:
        """Core NATS publishes have no subscribers in memory: dropped, as core NATS drops them then."""

    async def flush(self) -> None:
        await self.buffer.flush()

    async def create_topic(self, topic: str, partitions: int, replication: int, **kwargs: Any) -> None:
        self._broker.create(topic, partitions)

    def key_partition(self, topic: str, key: bytes) -> TP:
        log = self._broker.logs.get(topic)
        n = len(log) if log is not None else _partitions(self.app, topic)
        return TP(topic, keys.partition_for(key, n))

    def supports_headers(self) -> bool:
        return True

    async def dead_letter(self, topic: str, partition: int, offset: int, key: bytes | None,
                          value: bytes | None, reason: str) -> None:
        self.dead_letters.append((topic, partition, offset, key, value, reason))


class Transport(base.Transport):
    """``memory://[name]``: see the module docstring."""

    Consumer: ClassVar[type[Any]] = Consumer
    Producer: ClassVar[type[Any]] = Producer
    driver_version = "ssmd-memory"

    def __init__(self, url: list[URL], app: AppT, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(url, app, loop=loop)
        self.broker = broker(url[0].host or "default")
