"""Which layout each topic of an app has, shared by the app's consumer and producer.

A topic's layout comes from, in order: a ``create_topic`` declaration (Faust declares its internal
topics: changelogs, the leader topic, repartition topics), the app's subscribed ``Topic`` objects
(partitions, compaction, retention, replicas), and, for a topic the app only sends to, the
stream already on the server (its recorded partition count). A topic known nowhere is created
with ``topic_partitions`` partitions, as Kafka auto-creates topics; declare it
(``await topic.maybe_declare()``) to choose its partitions. Each stream is created or verified
once per process (:func:`ssmd.transport.streams.ensure_stream`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from datetime import timedelta
from typing import Any

from faust.types import AppT, TopicT
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from . import naming
from .options import NatsOptions
from .streams import PARTITIONS_META, TopicLayout, ensure_stream

log = logging.getLogger(__name__)

DLQ_MAX_AGE = 7 * 86400.0

_BY_APP: weakref.WeakKeyDictionary[Any, Topology] = weakref.WeakKeyDictionary()


def topology_of(app: AppT, opts: NatsOptions) -> Topology:
    """The one :class:`Topology` of ``app`` (consumer and producer transports share it)."""
    topo = _BY_APP.get(app)
    if topo is None:
        topo = _BY_APP[app] = Topology(app, opts)
    return topo


def _seconds(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


class Topology:
    """Topic name -> :class:`TopicLayout`, plus which streams this process has ensured."""

    def __init__(self, app: AppT, opts: NatsOptions) -> None:
        self._app = app
        self._opts = opts
        self.layouts: dict[str, TopicLayout] = {}
        self._ensured: set[str] = set()
        self._lock = asyncio.Lock()

    def declare(self, topic: str, partitions: int | None, *, compacting: bool = False,
                retention: Any = None, replicas: int | None = None) -> TopicLayout:
        conf = self._app.conf
        layout = TopicLayout(
            topic=topic,
            partitions=int(partitions or conf.topic_partitions),
            compacting=bool(compacting),
            max_age=_seconds(retention) or self._opts.max_age,
            replicas=int(replicas or conf.topic_replication_factor or 1),
            memory=self._opts.storage == "memory",
            duplicate_window=self._opts.duplicate_window,
        )
        self.layouts[topic] = layout
        return layout

    def _from_app(self, topic: str) -> TopicLayout | None:
        for t in list(self._app.topics):
            if isinstance(t, TopicT) and topic in t.topics:
                return self.declare(topic, t.partitions, compacting=bool(t.compacting),
                                    retention=t.retention, replicas=t.replicas)
        return None

    def ready(self, topic: str) -> TopicLayout | None:
        """The layout of a topic whose stream this process has already ensured (the fast path)."""
        return self.layouts.get(topic) if topic in self._ensured else None

    def known(self, topic: str) -> TopicLayout | None:
        return self.layouts.get(topic) or self._from_app(topic)

    async def ensure(self, js: JetStreamContext, topic: str) -> TopicLayout:
        """Layout of a topic the app declares or subscribes to; its stream created or verified."""
        layout = self.known(topic) or self.declare(topic, None)
        if topic not in self._ensured:
            async with self._lock:
                if topic not in self._ensured:
                    await ensure_stream(js, layout)
                    self._ensured.add(topic)
        return layout

    async def for_send(self, js: JetStreamContext, topic: str) -> TopicLayout:
        """Layout of a topic the app sends to: known, else adopted from the server, else created."""
        layout = self.layouts.get(topic)
        if layout is not None and topic in self._ensured:
            return layout
        if self.known(topic) is None:
            try:
                info = await js.stream_info(naming.stream_name(topic))
            except NotFoundError:
                log.warning("topic %r is not declared; creating it with %d partitions",
                            topic, self._app.conf.topic_partitions)
            else:
                meta = info.config.metadata or {}
                partitions = int(meta.get(PARTITIONS_META, "0")) or None
                self.declare(topic, partitions, compacting=info.config.max_msgs_per_subject == 1,
                             retention=info.config.max_age or None)
        return await self.ensure(js, topic)

    async def ensure_dlq(self, js: JetStreamContext) -> None:
        """Create the dead-letter stream (subjects ``faust-dlq.>``, kept 7 days) if missing."""
        if naming.DLQ_STREAM in self._ensured:
            return
        try:
            await js.stream_info(naming.DLQ_STREAM)
        except NotFoundError:
            await js.add_stream(StreamConfig(name=naming.DLQ_STREAM, subjects=[f"{naming.DLQ_PREFIX}.>"],
                                             max_age=DLQ_MAX_AGE, num_replicas=1))
        self._ensured.add(naming.DLQ_STREAM)
