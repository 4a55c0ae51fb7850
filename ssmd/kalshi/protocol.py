"""Protocol constants of Kalshi's Trade API v2 (see ``shared/reference/kalshi-protocol.md``).

Names here are facts of the wire protocol; nothing else in ssmd spells them out.
"""

from __future__ import annotations

import enum
from typing import Final

WS_PATH: Final = "/trade-api/ws/v2"
REST_PREFIX: Final = "/trade-api/v2"

PROD_WS_URL: Final = "wss://external-api-ws.kalshi.com" + WS_PATH
PROD_REST_URL: Final = "https://external-api.kalshi.com" + REST_PREFIX
DEMO_WS_URL: Final = "wss://external-api-ws.demo.kalshi.co" + WS_PATH
DEMO_REST_URL: Final = "https://external-api.demo.kalshi.co" + REST_PREFIX

HEADER_KEY: Final = "KALSHI-ACCESS-KEY"
HEADER_TIMESTAMP: Final = "KALSHI-ACCESS-TIMESTAMP"
HEADER_SIGNATURE: Final = "KALSHI-ACCESS-SIGNATURE"

HEARTBEAT_PAYLOAD: Final = b"heartbeat"
HEARTBEAT_INTERVAL_S: Final = 10.0


class Channel(enum.StrEnum):
    """Subscribable channels (current spec enum)."""

    ORDERBOOK_DELTA = "orderbook_delta"
    TICKER = "ticker"
    TRADE = "trade"
    FILL = "fill"
    MARKET_POSITIONS = "market_positions"
    MARKET_LIFECYCLE_V2 = "market_lifecycle_v2"
    MULTIVARIATE_MARKET_LIFECYCLE = "multivariate_market_lifecycle"
    COMMUNICATIONS = "communications"
    ORDER_GROUP_UPDATES = "order_group_updates"
    USER_ORDERS = "user_orders"
    CFBENCHMARKS_VALUE = "cfbenchmarks_value"
    CFBENCHMARKS_VALUE_5HZ = "cfbenchmarks_value_5hz"
    PYTH_VALUE = "pyth_value"


class MessageType(enum.StrEnum):
    """Values of a frame's ``type`` (they differ from channel names)."""

    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    OK = "ok"
    ERROR = "error"
    ORDERBOOK_SNAPSHOT = "orderbook_snapshot"
    ORDERBOOK_DELTA = "orderbook_delta"
    TICKER = "ticker"
    TRADE = "trade"
    MARKET_LIFECYCLE_V2 = "market_lifecycle_v2"
    EVENT_LIFECYCLE = "event_lifecycle"
    EVENT_FEE_UPDATE = "event_fee_update"
    MULTIVARIATE_MARKET_LIFECYCLE = "multivariate_market_lifecycle"
    FILL = "fill"
    MARKET_POSITION = "market_position"
    USER_ORDER = "user_order"


class Command(enum.StrEnum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    UPDATE_SUBSCRIPTION = "update_subscription"
    LIST_SUBSCRIPTIONS = "list_subscriptions"


class UpdateAction(enum.StrEnum):
    ADD_MARKETS = "add_markets"
    DELETE_MARKETS = "delete_markets"
    GET_SNAPSHOT = "get_snapshot"


#: Message types that carry ``seq`` (per sid, from 1, +1 per frame). ``ok`` and ``unsubscribed``
#: acks on a sid and sid-scoped errors consume a number too.
SEQUENCED_TYPES: Final = frozenset(
    {
        MessageType.ORDERBOOK_SNAPSHOT,
        MessageType.ORDERBOOK_DELTA,
        MessageType.TRADE,
        MessageType.MARKET_LIFECYCLE_V2,
        MessageType.EVENT_LIFECYCLE,
        MessageType.EVENT_FEE_UPDATE,
        MessageType.MULTIVARIATE_MARKET_LIFECYCLE,
    }
)

#: Channels whose data frames (and ``ok``/``unsubscribed`` acks) carry ``seq``.
SEQUENCED_CHANNELS: Final = frozenset(
    {
        Channel.ORDERBOOK_DELTA,
        Channel.TRADE,
        Channel.MARKET_LIFECYCLE_V2,
        Channel.MULTIVARIATE_MARKET_LIFECYCLE,
        Channel.ORDER_GROUP_UPDATES,
        Channel.COMMUNICATIONS,
        Channel.CFBENCHMARKS_VALUE,
        Channel.CFBENCHMARKS_VALUE_5HZ,
        Channel.PYTH_VALUE,
    }
)

#: Channels that needed an authenticated connection when unauthenticated WebSockets were allowed
#: (late 2025: error 9 "Authentication required" otherwise).
PRIVATE_CHANNELS: Final = frozenset(
    {Channel.ORDERBOOK_DELTA, Channel.FILL, Channel.MARKET_POSITIONS, Channel.COMMUNICATIONS,
     Channel.ORDER_GROUP_UPDATES, Channel.USER_ORDERS}
)

#: Channels for which a market spec is mandatory on subscribe (else error 14).
MARKET_SPEC_REQUIRED: Final = frozenset({Channel.ORDERBOOK_DELTA})
#: Channels that accept a market spec (others ignore it).
MARKET_FILTERED: Final = frozenset(
    {Channel.ORDERBOOK_DELTA, Channel.TICKER, Channel.TRADE, Channel.FILL, Channel.MARKET_POSITIONS,
     Channel.USER_ORDERS}
)
#: Channels whose subscriptions support ``add_markets`` / ``delete_markets``.
MARKET_UPDATABLE: Final = MARKET_FILTERED


class ErrorCode(enum.IntEnum):
    """WebSocket error codes (``msg.code`` of an ``error`` frame)."""

    UNABLE_TO_PROCESS = 1
    PARAMS_REQUIRED = 2
    CHANNELS_REQUIRED = 3
    SIDS_REQUIRED = 4
    UNKNOWN_COMMAND = 5
    ALREADY_SUBSCRIBED = 6  # retired
    UNKNOWN_SID = 7
    UNKNOWN_CHANNEL = 8
    AUTH_REQUIRED = 9
    CHANNEL_ERROR = 10  # terminal for the sid
    INVALID_PARAMETER = 11
    ONE_SID_REQUIRED = 12
    UNSUPPORTED_ACTION = 13
    MARKET_TICKER_REQUIRED = 14
    ACTION_REQUIRED = 15
    MARKET_NOT_FOUND = 16  # retired
    INTERNAL_ERROR = 17  # retired
    COMMAND_TIMEOUT = 18
    SHARD_FACTOR_POSITIVE = 19
    SHARD_FACTOR_REQUIRED = 20
    SHARD_KEY_RANGE = 21
    SHARD_FACTOR_MAX = 22
    MATCH_IDS_REQUIRED = 23
    INDEX_IDS_REQUIRED = 24
    BUFFER_OVERFLOW = 25  # terminal for the sid
    MARKET_LIMIT = 26
    TOO_MANY_REQUESTS = 27
    UNDERLYING_TICKERS_REQUIRED = 28


#: The exact human message the server puts in ``msg.msg`` for each code.
ERROR_MESSAGES: Final[dict[ErrorCode, str]] = {
    ErrorCode.UNABLE_TO_PROCESS: "Unable to process message",
    ErrorCode.PARAMS_REQUIRED: "Params required",
    ErrorCode.CHANNELS_REQUIRED: "Channels required",
    ErrorCode.SIDS_REQUIRED: "Subscription IDs required",
    ErrorCode.UNKNOWN_COMMAND: "Unknown command",
    ErrorCode.ALREADY_SUBSCRIBED: "Already subscribed",
    ErrorCode.UNKNOWN_SID: "Unknown subscription ID",
    ErrorCode.UNKNOWN_CHANNEL: "Unknown channel name",
    ErrorCode.AUTH_REQUIRED: "Authentication required",
    ErrorCode.CHANNEL_ERROR: "Channel error",
    ErrorCode.INVALID_PARAMETER: "Invalid parameter",
    ErrorCode.ONE_SID_REQUIRED: "Exactly one subscription ID is required",
    ErrorCode.UNSUPPORTED_ACTION: "Unsupported action",
    ErrorCode.MARKET_TICKER_REQUIRED: "Market Ticker required",
    ErrorCode.ACTION_REQUIRED: "Action required",
    ErrorCode.MARKET_NOT_FOUND: "Market not found",
    ErrorCode.INTERNAL_ERROR: "Internal error",
    ErrorCode.COMMAND_TIMEOUT: "Command timeout",
    ErrorCode.SHARD_FACTOR_POSITIVE: "shard_factor must be > 0",
    ErrorCode.SHARD_FACTOR_REQUIRED: "shard_factor is required when shard_key is set",
    ErrorCode.SHARD_KEY_RANGE: "shard_key must be >= 0 and < shard_factor",
    ErrorCode.SHARD_FACTOR_MAX: "shard_factor must be <= 100",
    ErrorCode.MATCH_IDS_REQUIRED: "Match IDs required",
    ErrorCode.INDEX_IDS_REQUIRED: "Index IDs required",
    ErrorCode.BUFFER_OVERFLOW: "Subscription buffer overflow",
    ErrorCode.MARKET_LIMIT: "Subscription market limit exceeded",
    ErrorCode.TOO_MANY_REQUESTS: "Too many requests",
    ErrorCode.UNDERLYING_TICKERS_REQUIRED: "Underlying tickers required",
}

#: Errors after which the server stops the sid; the client must subscribe again.
TERMINAL_ERRORS: Final = frozenset({ErrorCode.CHANNEL_ERROR, ErrorCode.BUFFER_OVERFLOW})


class MarketStatus(enum.StrEnum):
    """``status`` of a Market object."""

    INITIALIZED = "initialized"
    INACTIVE = "inactive"
    ACTIVE = "active"
    CLOSED = "closed"
    DETERMINED = "determined"
    DISPUTED = "disputed"
    AMENDED = "amended"
    FINALIZED = "finalized"


#: REST ``status`` filter values of ``GET /markets`` and the object statuses each selects.
MARKET_STATUS_FILTERS: Final[dict[str, frozenset[MarketStatus]]] = {
    "unopened": frozenset({MarketStatus.INITIALIZED}),
    "open": frozenset({MarketStatus.ACTIVE}),
    "paused": frozenset({MarketStatus.INACTIVE}),
    "closed": frozenset(
        {MarketStatus.CLOSED, MarketStatus.DETERMINED, MarketStatus.DISPUTED, MarketStatus.AMENDED}
    ),
    "settled": frozenset({MarketStatus.FINALIZED}),
}


class LifecycleEvent(enum.StrEnum):
    """``event_type`` of a ``market_lifecycle_v2`` message."""

    CREATED = "created"
    ACTIVATED = "activated"
    DEACTIVATED = "deactivated"
    CLOSE_DATE_UPDATED = "close_date_updated"
    DETERMINED = "determined"
    SETTLED = "settled"
    METADATA_UPDATED = "metadata_updated"
    PRICE_LEVEL_STRUCTURE_UPDATED = "price_level_structure_updated"


#: Prefix of multivariate (combo) market and event tickers, which lifecycle_v2 does not carry.
MVE_PREFIX: Final = "KXMVE"

#: Page size bounds of the REST list endpoints: (default, maximum).
MARKETS_LIMIT: Final = (100, 1000)
EVENTS_LIMIT: Final = (200, 200)
TRADES_LIMIT: Final = (100, 1000)
ORDERBOOK_MAX_DEPTH: Final = 100
ORDERBOOKS_MAX_TICKERS: Final = 100
