"""Faust topics as JetStream streams: one stream per topic, one subject token per partition.

A :class:`TopicLayout` says where a topic's partitions live; :func:`ensure_stream` creates the
stream or verifies an existing one and raises :class:`TopicMismatchError` when the server's
stream disagrees with the configuration (subjects, partition count, limits), so a worker never
reads or writes a misrouted stream. The partition count is recorded in the stream's metadata
(``ssmd.partitions``); the public subject pattern of a public-subject topic, in ``ssmd.public``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig, SubjectTransform
from nats.js.errors import NotFoundError

from ssmd.errors import ConfigError

from . import keys, naming

PARTITIONS_META = "ssmd.partitions"
PUBLIC_META = "ssmd.public"


class TopicMismatchError(ConfigError):
    """A topic's stream on the server disagrees with the topic's configuration."""

    def __init__(self, topic: str, stream: str, what: str, configured: object, server: object) -> None:
        super().__init__(
            f"topic {topic!r}: stream {stream} has {what} {server!r} on the server but the app "
            f"configures {configured!r}; fix the configuration or migrate the stream "
            f"(`nats stream info {stream}`)"
        )
        self.topic = topic
        self.stream = stream


@dataclass(frozen=True)
class TopicLayout:
    """Where one Faust topic's messages live, and the limits its stream must have.

    ``keyed`` topics store every message under ``<partition subject>.<key token>``; with
    ``compacting`` the stream keeps only the last message per key (JetStream's
    ``max_msgs_per_subject=1`` is real key compaction). Public-subject topics are keyed.
    """

    topic: str
    partitions: int
    compacting: bool = False
    max_age: float = 0.0
    replicas: int = 1
    memory: bool = False
    duplicate_window: float = 120.0

    @cached_property
    def stream(self) -> str:
        return naming.stream_name(self.topic)

    @cached_property
    def public(self) -> bool:
        return naming.is_public_pattern(self.topic)

    @cached_property
    def keyed(self) -> bool:
        return self.compacting or self.public

    def filter_subject(self, partition: int) -> str:
        """The consumer filter that selects exactly one partition."""
        base = naming.partition_subject(self.topic, partition)
        return f"{base}.*" if self.keyed else base

    def publish_subject(self, partition: int, key: bytes | None) -> str:
        """Subject to publish a record to; public topics take the public subject (server partitions)."""
        if self.public:
            return naming.public_subject(self.topic, keys.key_token(key or b""))
        base = naming.partition_subject(self.topic, partition)
        return f"{base}.{keys.key_token(key or b'')}" if self.keyed else base

    def stream_config(self) -> StreamConfig:
        base = naming.topic_subject_base(self.topic)
        transform = None
        if self.public:
            subjects = [self.topic]
            dest = f"{base}.{{{{partition({self.partitions},1)}}}}.{{{{wildcard(1)}}}}"
            transform = SubjectTransform(src=self.topic, dest=dest)
        else:
            subjects = [f"{base}.*.*" if self.keyed else f"{base}.*"]
        meta = {PARTITIONS_META: str(self.partitions)}
        if self.public:
            meta[PUBLIC_META] = self.topic
        return StreamConfig(
            name=self.stream,
            description=f"faust topic {self.topic}",
            subjects=subjects,
            subject_transform=transform,
            max_age=self.max_age or None,
            max_msgs_per_subject=1 if self.compacting else -1,
            num_replicas=self.replicas,
            storage=StorageType.MEMORY if self.memory else StorageType.FILE,
            discard=DiscardPolicy.OLD,
            duplicate_window=self.duplicate_window,
            allow_direct=True,
            metadata=meta,
        )


async def ensure_stream(js: JetStreamContext, layout: TopicLayout) -> None:
    """Create the topic's stream, or verify the existing one matches ``layout``."""
    want = layout.stream_config()
    try:
        info = await js.stream_info(layout.stream)
    except NotFoundError:
        await js.add_stream(want)
        return
    have = info.config
    meta = have.metadata or {}
    checks: list[tuple[str, object, object]] = [
        ("subjects", sorted(want.subjects or []), sorted(have.subjects or [])),
        ("partitions", str(layout.partitions), meta.get(PARTITIONS_META)),
        ("max_msgs_per_subject", want.max_msgs_per_subject, have.max_msgs_per_subject),
        ("max_age", float(want.max_age or 0), float(have.max_age or 0)),
        ("num_replicas (topic_replication_factor)", want.num_replicas or 1, have.num_replicas or 1),
    ]
    if layout.public:
        want_dest = want.subject_transform.dest if want.subject_transform else None
        have_dest = have.subject_transform.dest if have.subject_transform else None
        checks.append(("subject transform", want_dest, have_dest))
    for what, configured, server in checks:
        if configured != server:
            raise TopicMismatchError(layout.topic, layout.stream, what, configured, server)

