"""A faster frame parser for websockets' client protocol: whole data frames without per-frame objects.

Profiling the capture path (simulator at ~30k frames/s) showed websockets' sans-I/O frame parser taking
60% of the connector's CPU: three generator round trips and a ``Frame`` object per message. Kalshi sends
small, unfragmented, unmasked text frames; this parser walks the receive buffer and emits each such
frame's payload as a ``bytes`` event directly, and hands every other frame (ping, pong, close,
fragments, anything unusual) to websockets' own ``Frame.parse`` and ``recv_frame``, one frame at a time,
so control-frame handling, closing and protocol errors are websockets' unchanged behaviour. Events keep
their wire order (both kinds go through the protocol's event list).

It relies on these websockets internals (checked at import; the standard parser is used otherwise):
``Protocol.parse`` is a generator over ``self.reader`` (a ``StreamReader`` with a ``bytearray`` ``buffer``
and an ``eof`` flag), ``Frame.parse(read_exact, mask=..., max_size=..., extensions=...)``, ``recv_frame``,
``fail``, ``events``, ``current_size`` and ``max_message_size``. It is only used when no extension
(compression) was negotiated.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from websockets.client import ClientProtocol
from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.frames import CloseCode, Frame
from websockets.protocol import Protocol
from websockets.streams import StreamReader

# FIN + RSV 0 + TEXT or BINARY: a complete, uncompressed data message in one frame.
_WHOLE_DATA = frozenset({0x81, 0x82})

SUPPORTED = hasattr(StreamReader(), "buffer") and hasattr(Protocol, "recv_frame") and hasattr(Protocol, "fail")


class _FastFrames(Protocol):
    def parse(self) -> Generator[None]:
        if self.extensions or not SUPPORTED:
            yield from super().parse()
            return
        reader = self.reader
        while True:
            # events_received() swaps in a new list each time: look it up per batch.
            events: list[Any] = self.events
            buf = reader.buffer
            pos, end = 0, len(buf)
            other = False
            limit = self.max_message_size
            while end - pos >= 2:
                b0, length = buf[pos], buf[pos + 1]
                if b0 not in _WHOLE_DATA or length & 0x80 or self.current_size is not None:
                    other = True
                    break
                head = 2
                if length == 126:
                    if end - pos < 4:
                        break
                    length, head = (buf[pos + 2] << 8) | buf[pos + 3], 4
                elif length == 127:
                    if end - pos < 10:
                        break
                    length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
                if limit is not None and length > limit:
                    other = True  # let websockets raise PayloadTooBig and close properly
                    break
                stop = pos + head + length
                if stop > end:
                    break
                events.append(bytes(buf[pos + head : stop]))
                pos = stop
            if pos:
                del buf[:pos]
            if other or reader.eof:
                if not (yield from self._one_frame()):
                    return
                if self.close_rcvd is None:
                    continue
                # recv_frame() replaced this parser with discard(), which owns the buffer from now on.
                yield
                return
            yield

    def _one_frame(self) -> Generator[None, None, bool]:
        """Parse and handle one frame the standard way; False once the parser must stop."""
        try:
            max_size = self.max_message_size
            if max_size is not None and self.current_size is not None:
                max_size -= self.current_size
            if self.max_fragment_size is not None:
                max_size = self.max_fragment_size if max_size is None else min(max_size, self.max_fragment_size)
            frame = yield from Frame.parse(self.reader.read_exact, mask=False, max_size=max_size,
                                           extensions=self.extensions)
            self.recv_frame(frame)
        except ProtocolError as exc:
            self.fail(CloseCode.PROTOCOL_ERROR, str(exc))
            self.parser_exc = exc
        except EOFError as exc:
            self.fail(CloseCode.ABNORMAL_CLOSURE, str(exc))
            self.parser_exc = exc
        except UnicodeDecodeError as exc:
            self.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
            self.parser_exc = exc
        except PayloadTooBig as exc:
            exc.set_current_size(self.current_size)
            self.fail(CloseCode.MESSAGE_TOO_BIG, str(exc))
            self.parser_exc = exc
        except Exception as exc:
            self.logger.error("parser failed", exc_info=True)
            self.fail(CloseCode.INTERNAL_ERROR)
            self.parser_exc = exc
        else:
            return True
        yield  # fail() replaced this parser with discard(); it is never resumed
        return False


class FastClientProtocol(ClientProtocol, _FastFrames):
    """websockets' client protocol whose frame loop is :class:`_FastFrames`' (via the MRO: the handshake
    parser of ``ClientProtocol.parse`` continues with ``super().parse()``, which resolves to it)."""


def speed_up(protocol: ClientProtocol) -> None:
    """Switch a freshly created client protocol (before any data arrived) to the fast frame loop."""
    if SUPPORTED and type(protocol) is ClientProtocol:
        protocol.__class__ = FastClientProtocol
