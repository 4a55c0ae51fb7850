"""The simulator's one port: the WebSocket upgrade at ``/trade-api/ws/v2`` and REST under ``/trade-api/v2``.

Built on ``websockets``' asyncio server: ``process_request`` answers REST requests and refuses bad
upgrades (fault rejections first, then RSA-PSS verification -> HTTP 401 with Kalshi's body) before any
WebSocket exists. Frames are written in batches: all frames queued for a connection are framed by the
connection's sans-I/O protocol and handed to the transport in one write (a per-frame ``send()`` costs
more than the rest of the pipeline). With the default backpressure, a slow client slows the model down
(lossless); with ``overflow_bytes`` it gets error 25 on its data sids instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import weakref
from typing import TYPE_CHECKING

from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response

from ssmd.kalshi.auth import AuthFailure, KeyRing
from ssmd.kalshi.protocol import HEARTBEAT_PAYLOAD, REST_PREFIX, WS_PATH, ErrorCode
from ssmd.sim.rest import RestApi, json_body
from ssmd.sim.session import Session

if TYPE_CHECKING:
    from ssmd.sim.config import SimConfig
    from ssmd.sim.faults import Faults
    from ssmd.sim.groundtruth import GroundTruth
    from ssmd.sim.model import MarketModel

log = logging.getLogger("ssmd.sim")
# websockets logs every HTTP response and connection at INFO: one line per REST request drowns the
# CLI's output, so its server logger starts at WARNING (lower it to see connections).
ws_log = logging.getLogger("ssmd.sim.websockets")
ws_log.setLevel(logging.WARNING)

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
            503: "Service Unavailable"}


def text_frames(frames: list[tuple[int, str]]) -> bytes:
    """Unmasked, unfragmented WebSocket text frames (RFC 6455 5.2), as a server sends them.

    Framing here rather than through ``protocol.send_text`` halves the per-frame cost; it is written
    inside ``send_context()``, which checks the connection is open, and the sans-I/O protocol keeps no
    state about complete outgoing data frames, so its view of the connection stays exact.
    """
    parts: list[bytes] = []
    append = parts.append
    for _, text in frames:
        payload = text.encode()
        size = len(payload)
        if size < 126:
            append(_SHORT_HEADERS[size])
        elif size < 65536:
            append(b"\x81\x7e" + size.to_bytes(2, "big"))
        else:
            append(b"\x81\x7f" + size.to_bytes(8, "big"))
        append(payload)
    return b"".join(parts)


_SHORT_HEADERS = [bytes((0x81, n)) for n in range(126)]


def _answer_pings_empty(ws: ServerConnection) -> None:
    """Make the connection answer pings with an empty pong (the protocol echoes what it is given)."""
    recv_frame = ws.protocol.recv_frame

    def recv(frame: Frame) -> None:
        recv_frame(dataclasses.replace(frame, data=b"") if frame.opcode is Opcode.PING else frame)

    ws.protocol.recv_frame = recv  # type: ignore[method-assign]


def http_response(status: int, body: bytes) -> Response:
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                       ("Connection", "close")])
    return Response(status, _REASONS.get(status, "Error"), headers, body)


class Server:
    """Accepts connections and moves frames; implements :class:`~ssmd.sim.faults.ServerHooks`."""

    def __init__(self, config: SimConfig, model: MarketModel, faults: Faults, truth: GroundTruth,
                 keyring: KeyRing) -> None:
        self.config = config
        self.model = model
        self.faults = faults
        self.truth = truth
        self.keyring = keyring
        self.rest = RestApi(model, keyring, rate_limit=config.rest_rate_limit)
        self.live: dict[Session, ServerConnection] = {}
        self._conn_ids = itertools.count(1)
        self._delayed: dict[Session, asyncio.Queue[tuple[float, list[tuple[int, str]]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ws: WsServer | None = None
        self._anonymous: weakref.WeakSet[ServerConnection] = weakref.WeakSet()
        self.port = 0

    async def start(self) -> None:
        overflow = self.config.faults.overflow_bytes
        self._ws = await serve(
            self._handler, self.config.host, self.config.port, process_request=self._process_request,
            ping_interval=None, max_size=2**20, compression=None, close_timeout=2, logger=ws_log,
            # Backpressure: above the high-water mark, a flush waits for the client (lossless) unless
            # overflow_bytes asks for error 25 first, which needs the buffer to grow past it unpaused.
            write_limit=max(2**20, 4 * overflow),
        )
        self.port = self._ws.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop accepting, close every connection with 1001, wait for handlers, cancel helpers."""
        if self._ws is not None:
            self._ws.close(close_connections=True)
            await self._ws.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- ServerHooks -------------------------------------------------------------------------------

    def sessions(self) -> list[Session]:
        return list(self.live)

    def close(self, session: Session, *, abrupt: bool, code: int, reason: str) -> None:
        ws = self.live.get(session)
        if ws is None:
            return
        if abrupt:
            ws.transport.abort()
        else:
            self._spawn(ws.close(code, reason))

    def flush_soon(self, session: Session) -> None:
        self._spawn(self.flush(session))

    # -- HTTP --------------------------------------------------------------------------------------

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == WS_PATH:
            status = self.faults.upgrade_rejection()
            if status is not None:
                return http_response(status, json_body({"error": {"code": "unavailable", "message": "refused"}}))
            failure = self.keyring.check(request.headers, "GET", WS_PATH)
            if failure is AuthFailure.MISSING_HEADERS and self.config.allow_unauthenticated:
                self._anonymous.add(conn)
                return None
            if failure is not None:
                return http_response(401, json_body(failure.body()))
            return None
        if path.startswith(REST_PREFIX + "/") or path == REST_PREFIX:
            status, body = self.rest.handle(request.path, request.headers)
            return http_response(status, body)
        return http_response(404, json_body({"error": {"code": "not_found", "message": "no such path"}}))

    # -- WebSocket ---------------------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        session = Session(next(self._conn_ids), self.model, self.faults, self.truth,
                          max_markets=self.config.max_markets_per_sid, authenticated=ws not in self._anonymous,
                          repeat_error=self.config.repeat_subscribe_error)
        self.live[session] = ws
        if self.config.faults.empty_pongs:
            _answer_pings_empty(ws)
        heartbeat = asyncio.create_task(self._heartbeat(session, ws))
        try:
            async for message in ws:
                session.handle(message)
                await self.flush(session)
        except ConnectionClosed:
            pass
        finally:
            del self.live[session]
            self._delayed.pop(session, None)
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _heartbeat(self, session: Session, ws: ServerConnection) -> None:
        """A ``heartbeat`` Ping every interval; optionally drop clients that stopped answering."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[float] | None = None
        sent_at = 0.0
        timeout = self.config.pong_timeout_s
        written = session.frames_written
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.config.heartbeat_s)
                busy, written = session.frames_written != written, session.frames_written
                if busy and self.config.faults.busy_skips_pings:
                    continue
                if waiter is not None and not waiter.done():
                    if timeout is not None and loop.time() - sent_at >= timeout:
                        await ws.close(1011, "keepalive ping timeout")
                        return
                    continue  # the previous ping is still unanswered: one outstanding ping at a time
                if self.faults.pings_stopped:
                    continue
                waiter = await ws.ping(HEARTBEAT_PAYLOAD)  # type: ignore[assignment]
                sent_at = loop.time()

    async def flush(self, session: Session) -> None:
        """Write everything queued for ``session`` (through the delay line when a delay is active)."""
        if not session.out:
            return
        frames, session.out = session.out, []
        queue = self._delayed.get(session)
        if self.faults.delay_s > 0 or queue is not None:
            if queue is None:
                queue = self._delayed[session] = asyncio.Queue()
                self._spawn(self._delay_line(session, queue))
            queue.put_nowait((asyncio.get_running_loop().time() + self.faults.delay_s, frames))
            return
        await self._write(session, frames)

    async def _delay_line(self, session: Session, queue: asyncio.Queue[tuple[float, list[tuple[int, str]]]]) -> None:
        loop = asyncio.get_running_loop()
        while session in self.live:
            due, frames = await queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            await self._write(session, frames)
            if queue.empty() and self.faults.delay_s <= 0:
                self._delayed.pop(session, None)
                if session.out:
                    await self.flush(session)
                return

    async def _write(self, session: Session, frames: list[tuple[int, str]]) -> None:
        ws = self.live.get(session)
        if ws is None:
            return
        limit = self.config.faults.overflow_bytes
        if limit and ws.transport.get_write_buffer_size() > limit:
            # The client cannot keep up: Kalshi answers with error 25 on its data subscriptions.
            session.out = []
            session.inject_error(ErrorCode.BUFFER_OVERFLOW, None)
            frames, session.out = session.out, []
        try:
            async with ws.send_context():
                ws.transport.write(text_frames(frames))
        except ConnectionClosed:
            return
        session.frames_written += len(frames)
        if self.truth.enabled:
            self.truth.on_sent(session.conn_id, frames)
