"""A lean pipelined JetStream publisher.

``nats-py``'s ``publish_async`` creates a future, an inbox subscription entry and a timer per
message (~50 us). This publisher core-publishes every message with a reply subject
``<inbox>.<n>`` under one wildcard subscription, and matches each PubAck to its message by
``n``, so acks need not arrive in order (several streams, several servers). Each message's
protocol command (``HPUB`` and its header block) is encoded once, in :meth:`publish`; a write
hands the connection one buffer with every queued command, and acks arrive raw
(:mod:`.fastsub`). Contract:

* :meth:`publish` returns once the message is queued for the connection; the returned future
  resolves to the :class:`Ack` (stream sequence, duplicate flag) or fails with
  :class:`PublishError` on a rejection (no stream for the subject, wrong expected stream; or,
  client-side, a payload over the server's limit, a malformed subject or header name).
* A message without an ack after ``ack_timeout`` is published again with the same headers, so a
  ``Nats-Msg-Id`` makes the retry harmless; retries go on until acked (at-least-once: outputs
  are never dropped silently), with a warning each time.
* Writes are coalesced by how busy the event loop is: queued messages go to the socket as soon
  as the loop has nothing else ready to run, or after 2 ms, or once ``max_batch`` gathered, in
  one write. An idle app writes at once (no added latency). A saturated one (its writes have
  been carrying many messages) waits up to ``linger`` with everything produced meanwhile: on these
  machines a socket write to a local nats-server costs ~100 us of wall time (it wakes the
  server), more than everything else a publish does.
* At most ``max_inflight`` messages are unacknowledged; :meth:`publish` waits beyond that.
* :meth:`flush` waits for every message published before the call and raises the first
  :class:`PublishError` among them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from nats import errors as nats_errors
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription

from .envelope import block_of, status_of
from .fastsub import subscribe_direct

log = logging.getLogger(__name__)


class Ack(NamedTuple):
    """A JetStream publish acknowledgement: the stream sequence, and whether it was a duplicate."""

    seq: int
    duplicate: bool


_BAD_SUBJECT = re.compile(r"\s")
_QUICK_LOOKS = 8
_BUSY_BATCH = 16
_QUIET_LINGER = 0.002  # the longest wait while not saturated


def parse_ack(data: bytes) -> Ack | None:
    """Read a PubAck (``{"stream":"S","seq":7[,"duplicate":true]}``) without a JSON parser.

    ``None`` for anything else (an error response), which :func:`_refusal` then explains.
    """
    i = data.find(b'"seq":')
    if i < 0 or data.startswith(b'{"error"'):
        return None
    j = data.find(b",", i)
    try:
        if j < 0:
            return Ack(int(data[i + 6:data.index(b"}", i)]), False)
        return Ack(int(data[i + 6:j]), b'"duplicate"' in data)  # the server writes '"duplicate": true'
    except ValueError:
        return None


def _refusal(subject: str, data: bytes) -> PublishError:
    try:
        err = json.loads(data).get("error") or {}
    except (ValueError, AttributeError):
        return PublishError(subject, 0, f"unreadable ack {data[:80]!r}")
    return PublishError(subject, int(err.get("err_code", err.get("code", 0))), str(err.get("description")))


class PublishError(Exception):
    """The server refused a publish."""

    def __init__(self, subject: str, code: int, description: str) -> None:
        super().__init__(f"publish to {subject!r} refused ({code}): {description}")
        self.subject = subject
        self.code = code


class _Pending:
    __slots__ = ("command", "deadline", "future", "subject", "tries", "wrap")

    def __init__(self, subject: str, command: bytes, future: asyncio.Future[Any], deadline: float,
                 wrap: Callable[[Ack], Any] | None) -> None:
        self.subject = subject
        self.command = command
        self.future = future
        self.deadline = deadline
        self.wrap = wrap
        self.tries = 1


def _send(nc: NATS, loop: asyncio.AbstractEventLoop, data: bytes, count: int) -> None:
    """Queue ready-made publish commands on the connection and wake its flusher.

    ``Client.publish``'s checks and bookkeeping, without its per-message coroutine: the bytes go
    to ``Client._pending`` (which a reconnect replays), the flusher task writes them.
    """
    if nc.is_closed:
        raise nats_errors.ConnectionClosedError
    if nc.is_draining_pubs:
        raise nats_errors.ConnectionDrainingError
    connected = nc.is_connected
    if not connected and (nc._max_pending_size <= 0
                          or len(data) + nc._pending_data_size > nc._max_pending_size):
        raise nats_errors.OutboundBufferLimitError
    stats = nc.stats
    stats["out_msgs"] += count
    stats["out_bytes"] += len(data)
    nc._pending.append(data)
    nc._pending_data_size += len(data)
    queue = nc._flush_queue
    if connected and queue is not None and queue.empty():
        flusher = nc._flusher_task
        if flusher is not None and not flusher.done():
            queue.put_nowait(loop.create_future())
        else:  # no flusher (it died with the connection): nats-py writes inline
            asyncio.ensure_future(nc._flush_pending()).add_done_callback(_log_failure)


class Publisher:
    """Pipelined JetStream publishes over one connection; see the module docstring."""

    def __init__(self, nc: NATS, *, max_inflight: int = 4096, ack_timeout: float = 5.0,
                 max_batch: int = 512, linger: float = 0.01) -> None:
        self._nc = nc
        self._max_batch = max_batch
        self._linger = linger
        self._outbox: list[int] = []
        self._core: list[bytes] = []  # core publishes (no ack) waiting for the next write
        self._core_heads: dict[str, bytes] = {}
        self._write_by = 0.0
        self._write_scheduled = False
        self._batch_avg = 0.0
        self._look_every = 0.0
        self._valid_subjects: set[str] = set()
        self._max_inflight = max_inflight
        self._ack_timeout = ack_timeout
        self._prefix = nc.new_inbox() + "."
        self._prefix_len = len(self._prefix)
        self._next = 0
        self._pending: dict[int, _Pending] = {}
        self._room = asyncio.Event()
        self._room.set()
        self._sub: Subscription | None = None
        self._retrier: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()  # construct it in the loop that publishes

    async def start(self) -> None:
        self._sub = await subscribe_direct(self._nc, self._prefix + "*", self._on_ack)
        self._retrier = asyncio.create_task(self._retry_loop(), name="ssmd-publisher-retry")

    async def close(self) -> None:
        if self._retrier is not None:
            self._retrier.cancel()
            await asyncio.gather(self._retrier, return_exceptions=True)
        if self._sub is not None and not self._nc.is_closed:
            await self._sub.unsubscribe()
        for p in self._pending.values():
            if not p.future.done():
                p.future.cancel()
        self._pending.clear()

    @property
    def inflight(self) -> int:
        return len(self._pending)

    async def publish(self, subject: str, payload: bytes, headers: Mapping[str, str] | bytes | None = None,
                      wrap: Callable[[Ack], Any] | None = None) -> asyncio.Future[Any]:
        """Publish; the future resolves to the :class:`Ack` (or ``wrap(ack)``) once acknowledged.

        ``headers`` is a mapping or a ready header block (:func:`.envelope.header_block`).
        """
        while len(self._pending) >= self._max_inflight:
            self._room.clear()
            await self._room.wait()
        return self.publish_nowait(subject, payload, headers, wrap)

    def publish_nowait(self, subject: str, payload: bytes, headers: Mapping[str, str] | bytes | None = None,
                       wrap: Callable[[Ack], Any] | None = None) -> asyncio.Future[Any]:
        """:meth:`publish` without the wait for room: call it only while :attr:`has_room`."""
        loop = self._loop
        future: asyncio.Future[Any] = loop.create_future()
        n = self._next
        self._next = n + 1
        try:
            command = self._command(subject, n, payload, headers)
        except (ValueError, nats_errors.Error) as exc:
            future.set_exception(PublishError(subject, 0, repr(exc)))
            return future
        now = loop.time()
        self._pending[n] = _Pending(subject, command, future, now + self._ack_timeout, wrap)
        outbox = self._outbox
        outbox.append(n)
        if len(outbox) >= self._max_batch:
            self._write()
        elif not self._write_scheduled:
            self._schedule_write(now)
        return future

    def publish_core(self, subject: str, payload: bytes) -> None:
        """A core NATS publish (no acknowledgement, at most once), sent in the next write.

        For live-feed copies of what is published durably: they share the JetStream publishes'
        socket writes instead of costing one of their own. A message that cannot be written (the
        connection is down) is dropped, as core NATS drops it.
        """
        self.publish_core_many((subject,), (payload,))

    def publish_core_many(self, subjects: Sequence[str], payloads: Sequence[bytes]) -> None:
        """:meth:`publish_core` of each ``payloads[i]`` on ``subjects[i]``, in order.

        Raises ``nats.errors.Error`` for a bad subject or an oversized payload; the messages before it
        are sent, the rest are not.
        """
        core, heads, limit = self._core, self._core_heads, self._nc.max_payload
        try:
            for subject, payload in zip(subjects, payloads, strict=True):
                head = heads.get(subject) or self._core_head(subject)
                if len(payload) > limit:
                    raise nats_errors.MaxPayloadError
                core.append(b"%s%d\r\n%s\r\n" % (head, len(payload), payload))
        finally:
            if len(core) >= self._max_batch:
                self._write()
            elif core and not self._write_scheduled:
                self._schedule_write(self._loop.time())

    def _core_head(self, subject: str) -> bytes:
        """``PUB {subject} `` of a valid subject (remembered for the few thousand subjects in use)."""
        self._check(subject, b"")
        head = f"PUB {subject} ".encode()
        if len(self._core_heads) < 4096:
            self._core_heads[subject] = head
        return head

    @property
    def has_room(self) -> bool:
        """Fewer than ``max_inflight`` messages unacknowledged."""
        return len(self._pending) < self._max_inflight

    def _check(self, subject: str, payload: bytes) -> None:
        if subject not in self._valid_subjects:
            if not subject or _BAD_SUBJECT.search(subject):
                raise nats_errors.BadSubjectError
            if len(self._valid_subjects) < 4096:
                self._valid_subjects.add(subject)
        if len(payload) > self._nc.max_payload:
            raise nats_errors.MaxPayloadError

    def _command(self, subject: str, n: int, payload: bytes, headers: Mapping[str, str] | bytes | None) -> bytes:
        """The ``PUB``/``HPUB`` protocol command of message ``n``."""
        self._check(subject, payload)
        block = headers if headers is None or type(headers) is bytes else block_of(headers)  # type: ignore[arg-type]
        if block:
            size = len(block)
            return b"".join((f"HPUB {subject} {self._prefix}{n} {size} {size + len(payload)}\r\n".encode(),
                             block, payload, b"\r\n"))
        return b"".join((f"PUB {subject} {self._prefix}{n} {len(payload)}\r\n".encode(), payload, b"\r\n"))

    def _schedule_write(self, now: float) -> None:
        self._write_scheduled = True
        if self._batch_avg >= _BUSY_BATCH:
            # Saturated (writes have been carrying many messages): more are coming at once, so
            # skip the quick looks and gather for up to ``linger``, in one write.
            self._write_by = now + self._linger
            self._look_every = self._linger / 10
            self._loop.call_later(self._look_every, self._write_when_idle, _QUICK_LOOKS)
        else:
            self._write_by = now + min(self._linger, _QUIET_LINGER)
            self._look_every = min(self._linger, _QUIET_LINGER) / 10
            self._loop.call_soon(self._write_when_idle, 0)

    def _write_when_idle(self, looks: int) -> None:
        loop = self._loop
        # ``_ready`` is CPython's queue of runnable callbacks: while other work is queued, let it
        # add its messages to this write. The work an event leaves behind (Faust's callbacks,
        # the agent's next step) takes a few loop iterations, so look again on each of those:
        # a lone message is written as soon as the loop goes idle; a loop still busy after
        # that looks again every linger/10 until the deadline.
        left = self._write_by - loop.time()
        if left > 0 and (self._outbox or self._core) and len(getattr(loop, "_ready", ())):
            if looks < _QUICK_LOOKS:
                loop.call_soon(self._write_when_idle, looks + 1)
            else:
                loop.call_later(min(left, self._look_every), self._write_when_idle, looks + 1)
            return
        self._write_scheduled = False
        self._write()

    def _write(self) -> None:
        """Hand every message in the outbox to the connection (one socket write for all)."""
        if not self._outbox and not self._core:
            return
        outbox, self._outbox = self._outbox, []
        pending = self._pending
        commands = [p.command for n in outbox if (p := pending.get(n)) is not None]
        if self._core:
            commands += self._core
            self._core = []
        # a moving average, so one burst (a paused input catching up) does not count as saturation
        self._batch_avg += (len(commands) - self._batch_avg) / 4
        if not commands:
            return
        try:
            _send(self._nc, self._loop, b"".join(commands), len(commands))
        except Exception as exc:  # disconnected, buffer full: the retry loop publishes them again
            log.debug("%d publishes deferred: %r", len(commands), exc)

    async def flush(self) -> None:
        """Wait for every message published so far; raise the first refusal among them."""
        self._write()
        futures = [p.future for p in self._pending.values()]
        if not futures:
            return
        results = await asyncio.gather(*futures, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    def _on_ack(self, subject: bytes, reply: bytes, headers: bytes | None, data: bytes) -> None:
        try:
            p = self._pending.pop(int(subject[self._prefix_len:]), None)
        except ValueError:
            return
        if p is None:
            return  # an ack for a retried message that was already acknowledged
        if not self._room.is_set() and len(self._pending) < self._max_inflight:
            self._room.set()
        future = p.future
        if future.done():
            return
        if headers is not None and status_of(headers)[0] == "503":
            future.set_exception(PublishError(p.subject, 503, "no stream listens on this subject"))
            return
        ack = parse_ack(data)
        if ack is None:
            future.set_exception(_refusal(p.subject, data))
        else:
            future.set_result(ack if p.wrap is None else p.wrap(ack))

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self._ack_timeout / 4))
            now = self._loop.time()
            queued = set(self._outbox)
            expired = [(n, p) for n, p in self._pending.items() if p.deadline <= now and n not in queued]
            for n, p in expired:
                if self._pending.get(n) is not p:
                    continue
                p.tries += 1
                p.deadline = now + self._ack_timeout * min(p.tries, 6)
                log.warning("no ack for publish to %s after %d tries; publishing again", p.subject, p.tries - 1)
                try:
                    _send(self._nc, self._loop, p.command, 1)
                except Exception as exc:  # reconnecting: the next round retries
                    log.warning("retrying publish to %s failed: %r", p.subject, exc)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("writing queued publishes failed: %r", task.exception())
