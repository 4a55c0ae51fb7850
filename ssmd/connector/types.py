"""The connector's interface module: callback types, events, status records and errors.

It imports nothing else from :mod:`ssmd.connector`, so every other module (and the Faust agent built on
the connector) can depend on it alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ssmd.errors import SsmdError

FrameCallback = Callable[[bytes, int, int], None]
"""``on_frame(raw, received_ns, connection_id)``: called synchronously, in receive order per connection,
for every WebSocket message the exchange sends (data, control acks, errors, malformed or unknown frames
alike). ``raw`` is the message payload exactly as received; ``received_ns`` is ``time.time_ns()`` when
its last byte was processed. The callback must not block (append to a buffer); an exception it raises is
logged and counted, never propagated into the socket."""

Owner = Callable[[str], bool]
"""Whether this process captures a ticker (e.g. "its partition is one of mine")."""


class ConnectorError(SsmdError):
    """Root of the connector's errors."""


class HandshakeRejected(ConnectorError):
    """The exchange refused the WebSocket upgrade with an HTTP status (401 bad key, 400, 503...).

    ``status`` is the HTTP status; ``detail`` is Kalshi's error code/details when the body has them.
    """

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"WebSocket upgrade refused: HTTP {status}" + (f" ({detail})" if detail else ""))
        self.status = status
        self.detail = detail


class RestError(ConnectorError):
    """A REST request failed for good (a 4xx other than 429, or retries exhausted)."""

    def __init__(self, message: str, *, status: int | None = None, path: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.path = path


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """A connection opened (``kind="open"``) or closed (``kind="close"``, with ``reason``).

    ``at_ns`` is wall-clock ns. Every ``open`` has a fresh ``connection_id``; its sids and seqs start over,
    and nothing received on an earlier connection id is delivered after its ``close`` event.
    """

    kind: str
    shard: int
    connection_id: int
    at_ns: int
    reason: str = ""


EventCallback = Callable[[ConnectionEvent], None]
MarketsCallback = Callable[[frozenset[str], frozenset[str]], None]
"""``on_markets(added, removed)``: the connector's market universe changed (discovery or lifecycle)."""


@dataclass
class ChannelStatus:
    channel: str
    sid: int | None
    markets: int
    pending: bool


@dataclass
class ShardStatus:
    """One exchange connection slot, for the stats page."""

    shard: int
    connection_id: int | None
    connected: bool
    connects: int
    reconnects: int
    stale_reconnects: int
    frames: int
    bytes: int
    last_frame_ns: int | None
    connected_since_ns: int | None
    last_error: str
    wanted: int
    channels: list[ChannelStatus] = field(default_factory=list)


@dataclass
class ConnectorStatus:
    markets: int
    """Markets in the universe (discovery + lifecycle)."""
    wanted: int
    """Markets this process captures (the universe filtered by the owner predicate)."""
    discovered: bool
    discovery_error: str
    """Why discovery has not finished yet (the last REST failure), "" once it has."""
    callback_errors: int
    malformed: int
    rest_requests: int
    rest_throttled: int
    shards: list[ShardStatus]
