"""The exchange-facing half of capture: Kalshi WebSocket and REST, as one :class:`Connector`.

- :mod:`~ssmd.connector.types`: callback types, events, status records, errors (the interface root);
- :mod:`~ssmd.connector.keys`: the RSA key from a PEM path or PEM text, never logged;
- :mod:`~ssmd.connector.ws`: one signed WebSocket connection slot with liveness and backoff;
- :mod:`~ssmd.connector.subscriptions`: the sans-I/O subscription state of one connection;
- :mod:`~ssmd.connector.shard`: a connection plus its subscriptions and command loop;
- :mod:`~ssmd.connector.rest`, :mod:`~ssmd.connector.selection`: REST discovery of the selected markets;
- :mod:`~ssmd.connector.lifecycle`: following ``market_lifecycle_v2``;
- :mod:`~ssmd.connector.frames`: cheap routing facts of a raw frame (its ticker) for the hot path;
- :mod:`~ssmd.connector.fastframes`: a faster frame parser under websockets' client protocol;
- :mod:`~ssmd.connector.connector`: the :class:`Connector` facade.
"""

from __future__ import annotations

from ssmd.connector.connector import Connector, ConnectorOptions
from ssmd.connector.frames import sid_of, ticker_of
from ssmd.connector.types import (
    ConnectionEvent,
    ConnectorError,
    ConnectorStatus,
    HandshakeRejected,
    RestError,
    ShardStatus,
)

__all__ = [
    "ConnectionEvent",
    "Connector",
    "ConnectorError",
    "ConnectorOptions",
    "ConnectorStatus",
    "HandshakeRejected",
    "RestError",
    "ShardStatus",
    "sid_of",
    "ticker_of",
]
