"""One shard of the capture: a reconnecting WebSocket plus the subscriptions it should carry.

The shard routes every received frame: first to the owner's ``on_frame`` (all frames, unchanged), then
control frames (``subscribed``/``ok``/``unsubscribed``/``error``) to its :class:`Subscriptions` and
lifecycle messages to the connector. A commander task sends whatever commands bring the subscriptions to
the wanted markets, whenever the wanted set changes, a reply arrives or a backed-off retry falls due. On
every new connection the subscription state starts over (Kalshi's sids and seqs are per connection) and
every wanted market is subscribed again, which brings a fresh snapshot of each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec
from cryptography.hazmat.primitives.asymmetric import rsa

from ssmd.connector.backoff import Backoff
from ssmd.connector.subscriptions import Subscriptions
from ssmd.connector.types import ConnectionEvent, EventCallback, FrameCallback, ShardStatus
from ssmd.connector.ws import WsConnection
from ssmd.kalshi.messages import Envelope
from ssmd.kalshi.protocol import MessageType

log = logging.getLogger("ssmd.connector")

_encode = msgspec.json.Encoder().encode
_decode_envelope = msgspec.json.Decoder(Envelope).decode
# Data frames are most of the traffic and need no routing: recognise them by their first bytes (Kalshi
# writes "type" first). Frames shaped otherwise are decoded and routed, which is only slower.
_DATA_PREFIXES = (b'{"type":"orderbook_delta"', b'{"type":"trade"', b'{"type":"ticker"',
                  b'{"type":"orderbook_snapshot"')
_CONTROL = frozenset({MessageType.SUBSCRIBED, MessageType.OK, MessageType.UNSUBSCRIBED, MessageType.ERROR})
LIFECYCLE_TYPES = frozenset({MessageType.MARKET_LIFECYCLE_V2, MessageType.EVENT_LIFECYCLE})


@dataclass
class Counters:
    """Process-wide counts shared by the shards."""

    callback_errors: int = 0
    malformed: int = 0
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    """Set whenever a subscription changes state (for waiters on convergence)."""


@dataclass(frozen=True)
class WsOptions:
    url: str
    key_id: str
    private_key: rsa.RSAPrivateKey
    stale_after: float
    ping_interval: float | None
    ping_timeout: float | None
    backoff_initial: float
    backoff_cap: float
    stable_after: float
    compression: bool


class Shard:
    def __init__(self, index: int, ws: WsOptions, subs: Subscriptions, *, on_frame: FrameCallback,
                 on_lifecycle: Callable[[str, bytes], None], on_event: EventCallback | None,
                 on_reconnect: Callable[[Shard], None] | None, counters: Counters) -> None:
        self.index = index
        self.subs = subs
        self._on_frame, self._on_lifecycle = on_frame, on_lifecycle
        self._on_event, self._on_reconnect = on_event, on_reconnect
        self._counters = counters
        self.ws = WsConnection(
            ws.url, ws.key_id, ws.private_key, sink=self._route, on_open=self._opened, on_close=self._closed,
            stale_after=ws.stale_after, ping_interval=ws.ping_interval, ping_timeout=ws.ping_timeout,
            backoff=Backoff(ws.backoff_initial, ws.backoff_cap), stable_after=ws.stable_after,
            compression=ws.compression, name=f"kalshi-ws[{index}]",
        )
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._retry: asyncio.TimerHandle | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self.ws.run(), name=f"kalshi-ws[{self.index}]"),
                       asyncio.create_task(self._commander(), name=f"kalshi-cmd[{self.index}]")]

    async def stop(self) -> None:
        """Close the connection (abort, no close handshake wait) and end both tasks."""
        self.ws.stop()
        if self._retry is not None:
            self._retry.cancel()
        run, commander = self._tasks
        commander.cancel()
        # A connect attempt in flight can take up to its open timeout: do not wait for it.
        await asyncio.wait([run], timeout=2.0)
        run.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def set_wanted(self, tickers: Iterable[str]) -> None:
        wanted = set(tickers)
        if wanted != self.subs.wanted:
            self.subs.wanted = wanted
            self._changed()

    def want(self, ticker: str) -> None:
        if ticker not in self.subs.wanted:
            self.subs.wanted.add(ticker)
            self._changed()

    def unwant(self, ticker: str) -> None:
        if ticker in self.subs.wanted:
            self.subs.wanted.discard(ticker)
            self._changed()

    def _changed(self) -> None:
        self._wake.set()
        self._counters.progress.set()

    async def resync(self, tickers: Iterable[str]) -> frozenset[str]:
        """Ask for fresh snapshots of those ``tickers`` this connection carries; returns them."""
        if not self.ws.connected:
            return frozenset()
        commands, covered = self.subs.snapshot_commands(tickers)
        for cmd in commands:
            if not await self.ws.send(_encode(cmd).decode()):
                return frozenset()
        return covered

    # -- frames ------------------------------------------------------------------------------------

    def _route(self, raw: bytes, received_ns: int, connection_id: int) -> None:
        try:
            self._on_frame(raw, received_ns, connection_id)
        except Exception:
            self._counters.callback_errors += 1
            log.exception("on_frame raised (frame kept flowing)")
        if raw.startswith(_DATA_PREFIXES):
            return
        try:
            env = _decode_envelope(raw)
        except msgspec.DecodeError:
            self._counters.malformed += 1
            return
        try:
            if env.type in _CONTROL:
                self._control(env, raw)
            elif env.type in LIFECYCLE_TYPES:
                self._on_lifecycle(env.type, raw)
        except Exception:  # this runs inside the socket's data_received: never let anything escape
            self._counters.malformed += 1
            log.exception("%s: cannot process %s frame", self.ws.name, env.type)

    def _control(self, env: Envelope, raw: bytes) -> None:
        outcome = self.subs.on_control(env.type, env.id, env.sid, raw)
        if outcome.error:
            self.ws.last_error = outcome.error
            log.warning("%s: %s", self.ws.name, outcome.error)
        if outcome.changed:
            self._wake.set()
            self._counters.progress.set()

    async def _opened(self, connection_id: int) -> None:
        self.subs.reset()
        self._counters.progress.set()
        self._emit("open", connection_id)
        self._wake.set()
        if self.ws.connects > 1 and self._on_reconnect is not None:
            self._on_reconnect(self)

    def _closed(self, connection_id: int, reason: str) -> None:
        self.subs.reset()
        self._emit("close", connection_id, reason)

    def _emit(self, kind: str, connection_id: int, reason: str = "") -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(ConnectionEvent(kind, self.index, connection_id, time.time_ns(), reason))
        except Exception:
            log.exception("on_event raised")

    # -- commands ----------------------------------------------------------------------------------

    async def _commander(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._send_commands()
            except Exception:  # a bug here must not silently end the shard's command loop
                log.exception("%s: sending commands failed", self.ws.name)

    async def _send_commands(self) -> None:
        if not self.ws.connected:
            return
        for cmd in self.subs.commands():
            if not await self.ws.send(_encode(cmd).decode()):
                break  # the connection is gone; the next one starts over
        due = self.subs.next_retry()
        if due is not None:
            if self._retry is not None:
                self._retry.cancel()
            self._retry = asyncio.get_running_loop().call_later(max(0.0, due - time.monotonic()), self._wake.set)

    def converged(self) -> bool:
        return self.ws.connected and self.subs.converged()

    def status(self) -> ShardStatus:
        ws = self.ws
        return ShardStatus(
            shard=self.index, connection_id=ws.connection_id if ws.connected else None, connected=ws.connected,
            connects=ws.connects, reconnects=ws.reconnects, stale_reconnects=ws.stale_reconnects,
            frames=ws.frames, bytes=ws.bytes, last_frame_ns=ws.last_frame_ns,
            connected_since_ns=ws.connected_since_ns, last_error=ws.last_error, wanted=len(self.subs.wanted),
            channels=self.subs.status(),
        )
