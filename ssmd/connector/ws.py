"""One signed Kalshi WebSocket connection slot, reconnected for as long as it runs.

Contract of :class:`WsConnection`:

- Every (re)connect signs a fresh ``GET /trade-api/ws/v2`` (RSA-PSS headers are rebuilt, the timestamp
  ages out) and gets a fresh connection id (:func:`next_connection_id`), never reused in this process
  nor, with overwhelming probability, by another process start.
- Every message the server sends is handed to ``sink(raw, received_ns)`` synchronously from the socket's
  ``data_received``, in order, without going through websockets' receive queue (the per-message
  ``await recv()`` would cost more than the rest of the capture path); whole data frames are cut out of
  the buffer by :mod:`~ssmd.connector.fastframes`. Fragmented messages are reassembled. There is no read
  backpressure unless the owner calls :meth:`pause_reading`.
- Liveness: a data frame or a server Ping counts; Pongs answering our own keepalive pings do not (they
  prove only that the TCP path works, which websockets' ``ping_timeout`` already checks). No counted frame
  for ``stale_after`` seconds closes the connection and reconnects.
- Failures (refused TCP connect, HTTP 401/400/503 on the upgrade, a timeout, a drop) are recorded in
  ``last_error`` precisely and retried after a capped, jittered exponential backoff; they never raise out
  of :meth:`run`. The backoff restarts after a connection has lived ``stable_after`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import Frame, Opcode
from websockets.protocol import Event

from ssmd.connector.backoff import Backoff
from ssmd.connector.fastframes import speed_up
from ssmd.connector.types import HandshakeRejected
from ssmd.kalshi.auth import auth_headers
from ssmd.kalshi.protocol import WS_PATH

log = logging.getLogger("ssmd.connector")

_ID_BASE = secrets.randbits(64)
_ID_COUNTER = itertools.count(1)


def next_connection_id() -> int:
    """A 64-bit id for a new exchange connection: a random per-process base plus a counter, never 0."""
    while True:
        cid = (_ID_BASE + next(_ID_COUNTER)) & 0xFFFF_FFFF_FFFF_FFFF
        if cid:
            return cid


Sink = Callable[[bytes, int], None]


class _Conn(ClientConnection):
    """A client connection that hands messages to a sink instead of queueing them for ``recv()``."""

    sink: Sink | None = None
    on_ping: Callable[[], None] | None = None
    _fragments: list[bytes] | None = None
    _early: list[tuple[bytes, int]] | None = None

    def __init__(self, protocol: ClientProtocol, **kwargs: Any) -> None:
        speed_up(protocol)
        super().__init__(protocol, **kwargs)

    def attach(self, sink: Sink, on_ping: Callable[[], None]) -> None:
        self.sink, self.on_ping = sink, on_ping
        early, self._early = self._early, None
        for raw, ns in early or ():
            sink(raw, ns)

    def process_event(self, event: Event) -> None:
        if isinstance(event, bytes):  # a whole data message from the fast frame parser
            self._deliver(event)
            return
        if self.response is None or not isinstance(event, Frame):
            super().process_event(event)
            return
        op = event.opcode
        if op is Opcode.TEXT or op is Opcode.BINARY:
            if event.fin:
                self._deliver(bytes(event.data))
            else:
                self._fragments = [bytes(event.data)]
        elif op is Opcode.CONT:
            if self._fragments is not None:
                self._fragments.append(bytes(event.data))
                if event.fin:
                    raw, self._fragments = b"".join(self._fragments), None
                    self._deliver(raw)
        elif op is Opcode.PING:
            if self.on_ping is not None:
                self.on_ping()
        elif op is Opcode.PONG:
            self.acknowledge_pings(bytes(event.data))

    def _deliver(self, raw: bytes) -> None:
        ns = time.time_ns()
        if self.sink is None:
            # Only possible for frames that arrive in the same read as the handshake response.
            if self._early is None:
                self._early = []
            self._early.append((raw, ns))
            return
        self.sink(raw, ns)


def _rejection(e: InvalidStatus) -> HandshakeRejected:
    status = e.response.status_code
    detail = ""
    with contextlib.suppress(msgspec.DecodeError, TypeError, AttributeError):
        body = msgspec.json.decode(e.response.body or b"{}")
        err = body.get("error", body) if isinstance(body, dict) else {}
        if isinstance(err, dict):
            detail = " ".join(str(err[k]) for k in ("code", "details") if err.get(k))
        elif isinstance(err, str):
            detail = err
    return HandshakeRejected(status, detail)


class WsConnection:
    """A connection slot: connect, deliver, watch liveness, reconnect; see the module contract."""

    def __init__(
        self, url: str, key_id: str, private_key: rsa.RSAPrivateKey, *, sink: Callable[[bytes, int, int], None],
        on_open: Callable[[int], Awaitable[None]] | None = None, on_close: Callable[[int, str], None] | None = None,
        stale_after: float = 30.0, ping_interval: float | None = 10.0, ping_timeout: float | None = 20.0,
        open_timeout: float = 10.0, backoff: Backoff | None = None, stable_after: float = 10.0,
        compression: bool = False, name: str = "kalshi-ws",
    ) -> None:
        self.url = url
        self.name = name
        self._key_id, self._key = key_id, private_key
        self._sink, self._on_open, self._on_close = sink, on_open, on_close
        self.stale_after = stale_after
        self._ping_interval, self._ping_timeout, self._open_timeout = ping_interval, ping_timeout, open_timeout
        self.backoff = backoff or Backoff()
        self.stable_after = stable_after
        self._compression = "deflate" if compression else None
        self.ws: _Conn | None = None
        self.connection_id: int | None = None
        self.connects = 0
        self.failures = 0
        self.stale_reconnects = 0
        self.frames = 0
        self.bytes = 0
        self.last_frame_ns: int | None = None
        self.connected_since_ns: int | None = None
        self.last_error = ""
        self.last_rejection: HandshakeRejected | None = None
        self._last_alive = 0.0
        self._paused = False
        self._stopping = False
        self._wakeup = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self.ws is not None

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)

    async def send(self, text: str) -> bool:
        """Send one command frame; False if there is no open connection (it will resubscribe anyway)."""
        ws = self.ws
        if ws is None:
            return False
        try:
            await ws.send(text)
        except ConnectionClosed:
            return False
        return True

    def pause_reading(self) -> None:
        """Stop reading the socket (read backpressure); liveness is not judged while paused."""
        self._paused = True
        if self.ws is not None:
            self.ws.transport.pause_reading()

    def resume_reading(self) -> None:
        self._paused = False
        self._last_alive = time.monotonic()
        if self.ws is not None:
            self.ws.transport.resume_reading()

    def stop(self) -> None:
        """Ask :meth:`run` to close the connection and return."""
        self._stopping = True
        self._wakeup.set()
        if self.ws is not None:
            self.ws.transport.abort()

    async def run(self) -> None:
        while not self._stopping:
            ws = await self._connect()
            if ws is not None:
                lived = await self._serve(ws)
                if lived >= self.stable_after:
                    self.backoff.reset()
            if self._stopping:
                break
            delay = self.backoff.next()
            log.info("%s: reconnecting in %.2fs", self.name, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), delay)

    async def _connect(self) -> _Conn | None:
        headers = auth_headers(self._key_id, self._key, "GET", WS_PATH)
        try:
            ws = await connect(
                self.url, additional_headers=headers, create_connection=_Conn, open_timeout=self._open_timeout,
                ping_interval=self._ping_interval, ping_timeout=self._ping_timeout, max_size=2**24,
                compression=self._compression, proxy=None, user_agent_header="ssmd",
            )
        except InvalidStatus as e:
            self.last_rejection = _rejection(e)
            self._failed(str(self.last_rejection))
            return None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ConnectionClosed) as e:
            self._failed(f"connect to {self.url} failed: {type(e).__name__}: {e}")
            return None
        assert isinstance(ws, _Conn)
        return ws

    def _failed(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        log.warning("%s: %s", self.name, error)

    async def _serve(self, ws: _Conn) -> float:
        """Run one live connection until it closes or goes stale; returns how long it lived (s)."""
        cid = next_connection_id()
        started = time.monotonic()
        self.connection_id, self.connects = cid, self.connects + 1
        self.connected_since_ns, self._last_alive = time.time_ns(), started
        self.ws = ws
        sink = self._sink

        def deliver(raw: bytes, ns: int) -> None:
            self._last_alive = time.monotonic()
            self.frames += 1
            self.bytes += len(raw)
            self.last_frame_ns = ns
            sink(raw, ns, cid)

        def pinged() -> None:
            self._last_alive = time.monotonic()

        ws.attach(deliver, pinged)
        if self._paused:
            ws.transport.pause_reading()
        log.info("%s: connected (connection %d)", self.name, cid)
        reason = "closed"
        try:
            if self._on_open is not None:
                await self._on_open(cid)
            reason = await self._watch(ws)
        except Exception as e:  # an on_open failure must not end the slot: drop and reconnect
            reason = f"{type(e).__name__}: {e}"
            log.exception("%s: connection %d failed", self.name, cid)
        finally:
            # Not connected from here on (status, send): the close handshake below may take seconds.
            self.ws = None
            self.connected_since_ns = None
            if reason == "stale" or self._stopping:
                ws.transport.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)
            ws.transport.abort()
            ws.attach(_drop, _nothing)  # the contract: nothing of this connection after its close event
            if reason != "stopped":
                self.last_error = f"connection {cid} {reason}"
            if self._on_close is not None:
                self._on_close(cid, reason)
        return time.monotonic() - started

    async def _watch(self, ws: _Conn) -> str:
        """Wait until the connection closes (its close code/reason) or goes stale (``"stale"``)."""
        closed = asyncio.ensure_future(ws.wait_closed())
        try:
            tick = min(1.0, self.stale_after / 4)
            while True:
                done, _ = await asyncio.wait({closed}, timeout=tick)
                if self._stopping:
                    return "stopped"
                if done:
                    return _close_reason(ws)
                if not self._paused and time.monotonic() - self._last_alive > self.stale_after:
                    self.stale_reconnects += 1
                    log.warning("%s: no frame for %.1fs, reconnecting", self.name, self.stale_after)
                    return "stale"
        finally:
            closed.cancel()


def _drop(raw: bytes, ns: int) -> None:
    pass


def _nothing() -> None:
    pass


def _close_reason(ws: Any) -> str:
    rcvd = ws.protocol.close_rcvd
    if rcvd is not None:
        return f"closed by the server: code {rcvd.code} {rcvd.reason}".rstrip()
    return "dropped (no close frame: 1006)"
