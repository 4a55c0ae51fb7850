"""Consumer-group membership, leader election and partition assignment over JetStream KV.

Protocol (one group per Faust app id; names in :mod:`ssmd.transport.naming`):

* Liveness bucket (TTL = ``session_timeout``): every member puts ``members.<id>`` each
  ``heartbeat`` with its subscription and Faust's assignor metadata (which carries its current
  assignment, so placement stays sticky). A member that stops putting expires with the TTL; a
  member that stops cleanly deletes its key, so survivors take over at once.
* Leader: ``kv.create("leader")`` succeeds only while the key is absent; the holder refreshes it
  with a revision-checked update each heartbeat and loses it when a refresh fails. A dead
  leader's key expires with the TTL and another member takes over.
* Assignment: the leader runs **Faust's own** ``PartitionAssignor`` (co-partitioning, standbys,
  the ``__assignor-__leader`` topic for ``on_leader`` timers) on a duck-typed cluster whenever the
  set of members or their subscriptions change, and writes every member's assignment plus a new
  generation under ``_group.assignment`` in the offsets bucket with compare-and-set, so two
  would-be leaders cannot both publish a generation. Generations only grow; offset commits are
  fenced by them (:mod:`ssmd.transport.offsets`).
* Members read the assignment each heartbeat and hand a newer generation to ``on_assignment``
  (``None`` when the generation leaves them out). Failover therefore takes at most
  ``session_timeout + 2 * heartbeat`` plus the rebalance itself.
* Revoke barrier: Faust's protocol is eager (every member revokes everything, then gets its new
  set). A member that has revoked for generation ``g`` (agents drained, outputs acknowledged,
  offsets committed) says so in its heartbeat (``revoked``), and no member starts on its new
  partitions (table recovery, then reading from the committed offset) before every member of
  ``g`` has said so or left the group (:meth:`GroupMember.barrier`). Without it a new owner
  could restore a table before the old owner's last changelog writes and lose them.

A member that is cut off but alive (a zombie) keeps processing until it notices; its commits are
fenced by generation, and deterministic ``Nats-Msg-Id``s drop its re-sent outputs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka.coordinator.protocol import (  # type: ignore[import-untyped]
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)
from faust.types import AppT
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from . import naming
from .offsets import open_bucket

log = logging.getLogger(__name__)

OnAssignment = Callable[[int, ConsumerProtocolMemberAssignment | None], None]
PartitionsOf = Callable[[str], Awaitable[int | None]]


class _Cluster:
    """The one method of aiokafka's ``ClusterMetadata`` that Faust's assignor calls."""

    def __init__(self, partitions: Mapping[str, int]) -> None:
        self._partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        n = self._partitions.get(topic)
        return set(range(n)) if n else None


class GroupMember:
    """This process's membership in its app's consumer group."""

    def __init__(self, js: JetStreamContext, app: AppT, member_id: str, *, heartbeat: float,
                 session_timeout: float, partitions_of: PartitionsOf, on_assignment: OnAssignment) -> None:
        self._js = js
        self._app = app
        self.member_id = member_id
        self._heartbeat = heartbeat
        self._session_timeout = session_timeout
        self._partitions_of = partitions_of
        self._on_assignment = on_assignment
        self.topics: frozenset[str] = frozenset()
        self.generation = 0
        self.is_leader = False
        self.revoked_generation = 0
        self.generation_members: frozenset[str] = frozenset()
        self._lease_rev: int | None = None
        self._group: KeyValue | None = None
        self._state: KeyValue | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        app_id = self._app.conf.id
        self._group = await open_bucket(self._js, naming.group_bucket(app_id), ttl=self._session_timeout)
        self._state = await open_bucket(self._js, naming.offsets_bucket(app_id))
        self._task = asyncio.create_task(self._run(), name="ssmd-group-member")

    async def stop(self) -> None:
        """Leave the group: stop heartbeating and delete our keys so others take over now."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._group is None:
            return
        try:
            await self._group.delete(naming.member_key(self.member_id))
            if self._lease_rev is not None:
                await self._group.delete(naming.LEADER_KEY, last=self._lease_rev)
        except Exception as exc:  # leaving is best effort: the TTL removes us anyway
            log.info("leaving the group failed: %r", exc)

    def set_topics(self, topics: frozenset[str]) -> None:
        """Change the subscription; the leader reassigns on the next heartbeat."""
        self.topics = topics
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                if self.topics:
                    await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("group heartbeat failed; retrying")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._heartbeat)
            except TimeoutError:
                pass
            self._wake.clear()

    async def _tick(self) -> None:
        assert self._group is not None
        assignor: Any = self._app.assignor
        meta = assignor.metadata(set(self.topics)).encode()
        beat = {"topics": sorted(self.topics), "meta": base64.b64encode(meta).decode(),
                "revoked": self.revoked_generation}
        await self._group.put(naming.member_key(self.member_id), json.dumps(beat).encode())
        await self._elect()
        if self.is_leader:
            await self._assign()
        await self._follow()

    async def revoked(self, generation: int) -> None:
        """Tell the group this member has revoked everything for ``generation``."""
        self.revoked_generation = max(self.revoked_generation, generation)
        self._wake.set()

    async def barrier(self, generation: int) -> None:
        """Wait until every member of ``generation`` has revoked for it (or left the group).

        Gives up after ``session_timeout``: a member that neither answers nor expires is stuck,
        and waiting longer would stall the whole group.
        """
        assert self._group is not None
        others = set(self.generation_members - {self.member_id})
        deadline = asyncio.get_running_loop().time() + self._session_timeout
        while others:
            beats = await asyncio.gather(*(self._get(self._group, naming.member_key(m)) for m in others))
            others = {m for m, b in zip(others, beats, strict=True)
                      if b is not None and int(json.loads(b).get("revoked", 0)) < generation}
            if not others:
                return
            if asyncio.get_running_loop().time() > deadline:
                log.warning("generation %d: members %s did not revoke in time; going on", generation,
                            sorted(others))
                return
            await asyncio.sleep(min(0.05, self._heartbeat / 4))

    async def _elect(self) -> None:
        assert self._group is not None
        mine = self.member_id.encode()
        try:
            if self._lease_rev is None:
                self._lease_rev = await self._group.create(naming.LEADER_KEY, mine)
                log.info("member %s is the group leader", self.member_id)
            else:
                self._lease_rev = await self._group.update(naming.LEADER_KEY, mine, last=self._lease_rev)
        except KeyWrongLastSequenceError:
            if self._lease_rev is not None:
                log.warning("member %s lost the leader lease", self.member_id)
            self._lease_rev = None
        self.is_leader = self._lease_rev is not None

    async def _members(self) -> dict[str, dict[str, Any]]:
        assert self._group is not None
        bucket = naming.group_bucket(self._app.conf.id)
        prefix = f"$KV.{bucket}.members."
        info = await self._js.stream_info(f"KV_{bucket}", subjects_filter=prefix + "*")
        ids = [s[len(prefix):] for s in (info.state.subjects or {})]
        entries = await asyncio.gather(*(self._get(self._group, naming.member_key(i)) for i in ids))
        return {i: json.loads(e) for i, e in zip(ids, entries, strict=True) if e is not None}

    @staticmethod
    async def _get(kv: KeyValue, key: str) -> bytes | None:
        try:
            return (await kv.get(key)).value
        except KeyNotFoundError:
            return None

    async def _read_assignment(self) -> tuple[dict[str, Any] | None, int | None]:
        assert self._state is not None
        try:
            entry = await self._state.get(naming.ASSIGNMENT_KEY)
        except KeyNotFoundError:
            return None, None
        return json.loads(entry.value or b"{}"), entry.revision

    async def _assign(self) -> None:
        assert self._state is not None
        members = await self._members()
        current, rev = await self._read_assignment()
        signature = {m: v["topics"] for m, v in sorted(members.items())}
        if not members or (current is not None and current.get("signature") == signature):
            return
        topics = {t for v in members.values() for t in v["topics"]}
        counts = {t: n for t in sorted(topics) if (n := await self._partitions_of(t))}
        metadata = {m: ConsumerProtocolMemberMetadata.decode(base64.b64decode(v["meta"]))
                    for m, v in members.items()}
        assignor: Any = self._app.assignor
        assignments = assignor.assign(_Cluster(counts), metadata)
        generation = int(current["generation"]) + 1 if current else 1
        value = json.dumps({
            "generation": generation,
            "signature": signature,
            "members": {m: base64.b64encode(a.encode()).decode() for m, a in assignments.items()},
        }).encode()
        try:
            if rev is None:
                await self._state.create(naming.ASSIGNMENT_KEY, value)
            else:
                await self._state.update(naming.ASSIGNMENT_KEY, value, last=rev)
        except KeyWrongLastSequenceError:
            log.warning("another leader published an assignment first")
            return
        log.info("generation %d: assigned %d members %s", generation, len(members), sorted(members))

    async def _follow(self) -> None:
        current, _ = await self._read_assignment()
        if current is None or int(current["generation"]) <= self.generation:
            return
        self.generation = int(current["generation"])
        self.generation_members = frozenset(current["members"])
        raw = current["members"].get(self.member_id)
        assignment = ConsumerProtocolMemberAssignment.decode(base64.b64decode(raw)) if raw else None
        self._on_assignment(self.generation, assignment)

