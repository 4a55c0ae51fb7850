"""Committed offsets of a consumer group, in a JetStream KV bucket, fenced by generation.

One key per topic partition (``naming.offset_key``) holds ``{"offset": n, "generation": g}``.
``offset`` has Kafka's meaning: the next stream sequence to read (last processed + 1), so a
restarted worker resumes right after its last commit. Every write is a compare-and-set on the
key's revision; a writer whose generation is older than the stored one is fenced (its commit is
refused), so a worker that lost its partitions in a rebalance cannot move offsets under the new
owner.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping

from faust.types import TP
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from . import naming

log = logging.getLogger(__name__)


async def open_bucket(js: JetStreamContext, bucket: str, *, ttl: float | None = None) -> KeyValue:
    """Open a KV bucket, creating it (history 1) if missing."""
    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        return await js.create_key_value(bucket=bucket, history=1, ttl=ttl)


class OffsetStore:
    """Reads and commits offsets of one app (consumer group)."""

    def __init__(self, js: JetStreamContext, app_id: str) -> None:
        self._js = js
        self.bucket = naming.offsets_bucket(app_id)
        self._kv: KeyValue | None = None
        self._revision: dict[TP, int] = {}

    async def kv(self) -> KeyValue:
        if self._kv is None:
            self._kv = await open_bucket(self._js, self.bucket)
        return self._kv

    async def read(self, tps: Iterable[TP]) -> dict[TP, int | None]:
        """Committed offset of each TP (``None`` when never committed)."""
        tps = list(tps)
        values = await asyncio.gather(*(self._read_one(tp) for tp in tps))
        return dict(zip(tps, values, strict=True))

    async def _read_one(self, tp: TP) -> int | None:
        kv = await self.kv()
        try:
            entry = await kv.get(naming.offset_key(tp.topic, tp.partition))
        except KeyNotFoundError:
            return None
        self._revision[tp] = entry.revision or 0
        return int(json.loads(entry.value or b"{}")["offset"])

    async def commit(self, offsets: Mapping[TP, int], generation: int) -> bool:
        """Write offsets; ``False`` if any TP was fenced by a newer generation."""
        results = await asyncio.gather(*(self._commit_one(tp, o, generation) for tp, o in offsets.items()))
        return all(results)

    async def _commit_one(self, tp: TP, offset: int, generation: int) -> bool:
        kv = await self.kv()
        key = naming.offset_key(tp.topic, tp.partition)
        value = json.dumps({"offset": offset, "generation": generation}).encode()
        for _ in range(5):
            rev = self._revision.get(tp)
            try:
                if rev is None:
                    self._revision[tp] = await kv.create(key, value)
                else:
                    self._revision[tp] = await kv.update(key, value, last=rev)
                return True
            except KeyWrongLastSequenceError:
                try:
                    entry = await kv.get(key)
                except KeyNotFoundError:
                    self._revision.pop(tp, None)
                    continue
                stored = json.loads(entry.value or b"{}")
                if int(stored.get("generation", -1)) > generation:
                    log.warning("commit of %s fenced: generation %d < stored %s", tp, generation,
                                stored.get("generation"))
                    return False
                self._revision[tp] = entry.revision or 0
        return False

    def forget(self, tps: Iterable[TP]) -> None:
        """Drop cached revisions (after a rebalance another member may write these keys)."""
        for tp in tps:
            self._revision.pop(tp, None)
