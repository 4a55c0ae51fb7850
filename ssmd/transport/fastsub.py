"""Core subscriptions whose messages go straight to a plain function, as raw bytes.

``nats-py`` turns every delivery into a ``Msg`` (subject and reply decoded, headers run through
an email parser), then hands it to an ``asyncio.Queue`` read by a task that awaits the
callback. For the two hot paths of this transport (pull-consumer deliveries and publish acks)
the handler is a few lines of synchronous bookkeeping, so :func:`subscribe_direct` has the
connection's parser call it from the read loop with the raw wire fields
``(subject, reply, header block or None, payload)``: no ``Msg``, no header dict, no task hop.
The header block is the ``NATS/1.0...\\r\\n\\r\\n`` bytes as sent (see :mod:`.envelope`).

It relies on ``nats-py`` 2.16 internals (``Client._ps``, ``Parser``'s state, ``Client._subs``,
pinned in pyproject.toml). When they are not as expected, the subscription falls back to a
normal callback that re-encodes each ``Msg``: slower, same behaviour. Handlers must not block;
an exception they raise is logged and the message dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.protocol import parser as _nats_parser

log = logging.getLogger(__name__)

#: ``handler(subject, reply, header block or None, payload)``
RawHandler = Callable[[bytes, bytes, bytes | None, bytes], None]

_CONTROL = _nats_parser.AWAITING_CONTROL_LINE
_MAX_CONTROL = _nats_parser.MAX_CONTROL_LINE_SIZE


class _FastParser(_nats_parser.Parser):
    """nats-py's parser with a fast path for ``MSG``/``HMSG`` (all other operations: unchanged).

    A message is consumed only once its control line and payload are both buffered (parsing
    works on one ``bytes`` object, so every field is a slice, copied once), and the fast path
    keeps no state of its own; a message of a subscription without a raw handler goes to
    ``Client._process_msg`` exactly as in the stock parser.
    """

    direct: dict[int, RawHandler]

    async def parse(self, data: bytes = b"") -> None:
        buf = self.buf
        if self.state != _CONTROL:
            await super().parse(data)  # the stock path is half-way through a message
            return
        if buf:
            buf.extend(data)
            data = bytes(buf)
            buf.clear()
        nc: Any = self.nc
        direct = self.direct
        subs = nc._subs
        stats = nc.stats
        pos = 0
        size = len(data)
        stock = False  # what is left needs the stock parser (not a message, or malformed)
        while pos < size:
            if data[pos] not in b"MH":
                stock = True
                break
            end = data.find(b"\r\n", pos)
            if end < 0:
                stock = size - pos > _MAX_CONTROL  # the stock parser raises its protocol error
                break
            args = data[pos:end].split()
            n = len(args)
            if args[0] == b"MSG" and (n == 4 or n == 5):
                hsize = 0
                reply = args[3] if n == 5 else b""
            elif args[0] == b"HMSG" and (n == 5 or n == 6):
                hsize = int(args[-2])
                reply = args[3] if n == 6 else b""
            else:
                stock = True
                break
            start = end + 2
            stop = start + int(args[-1])
            if size < stop + 2:
                break  # the payload is not all here yet
            pos = stop + 2
            subject = args[1]
            sid = int(args[2])
            hdr = data[start:start + hsize] if hsize else None
            payload = data[start + hsize:stop]
            handler = direct.get(sid)
            if handler is not None and sid in subs:
                stats["in_msgs"] += 1
                stats["in_bytes"] += stop - start - hsize
                try:
                    handler(subject, reply, hdr, payload)
                except Exception:
                    log.exception("message handler failed on %s", subject)
            else:
                await nc._process_msg(sid, subject, reply, payload, hdr)
        if pos < size:
            buf.extend(data[pos:] if pos else data)
            if stock:
                await super().parse()


class _DirectQueue:
    """Stands in for a subscription's queue on the slow path: ``put_nowait`` runs the handler."""

    def __init__(self, sub: Subscription, handler: RawHandler) -> None:
        self._sub = sub
        self._handler = handler

    def put_nowait(self, msg: Msg) -> None:
        self._sub._pending_size -= len(msg.data)
        try:
            self._handler(msg.subject.encode(), msg.reply.encode(), header_block(msg.headers), msg.data)
        except Exception:
            log.exception("message handler failed on %s", msg.subject)

    async def get(self) -> Any:
        await asyncio.get_running_loop().create_future()  # never: nothing is ever queued

    def task_done(self) -> None:
        pass

    def empty(self) -> bool:
        return True

    def qsize(self) -> int:
        return 0

    async def join(self) -> None:
        return None


def header_block(headers: dict[str, str] | None) -> bytes | None:
    """A parsed ``Msg.headers`` back in wire form (inline status first), for the slow path."""
    if not headers:
        return None
    rest = dict(headers)
    status = rest.pop("Status", "")
    desc = rest.pop("Description", "")
    first = f"NATS/1.0 {status} {desc}".rstrip() if status else "NATS/1.0"
    lines = [first, *(f"{k}: {v}" for k, v in rest.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _fast_parser(nc: NATS) -> _FastParser | None:
    ps: Any = getattr(nc, "_ps", None)
    if isinstance(ps, _FastParser):
        return ps
    if type(ps) is not _nats_parser.Parser or not hasattr(nc, "_subs") or not hasattr(nc, "_process_msg"):
        return None
    ps.__class__ = _FastParser  # same layout; the connection keeps its parser state
    fast = cast(_FastParser, ps)
    fast.direct = {}
    return fast


async def subscribe_direct(nc: NATS, subject: str, handler: RawHandler) -> Subscription:
    """Subscribe with a synchronous raw ``handler`` called for each message, in arrival order."""
    queue: list[_DirectQueue] = []

    async def fallback(msg: Msg) -> None:
        queue[0].put_nowait(msg)

    sub = await nc.subscribe(subject, cb=fallback)
    queue.append(_DirectQueue(sub, handler))
    if hasattr(sub, "_pending_queue") and hasattr(sub, "_pending_size"):
        sub._pending_queue = queue[0]  # type: ignore[assignment]
    ps = _fast_parser(nc)
    if ps is not None:
        live = nc._subs
        for sid in [sid for sid in ps.direct if sid not in live]:
            del ps.direct[sid]  # unsubscribed since
        ps.direct[sub._id] = handler
    return sub
