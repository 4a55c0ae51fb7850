"""Typed ssmd records: what every stage passes around, independent of any wire format.

Responsibilities:
- one frozen dataclass per record type (:class:`Trade`, :class:`OrderBookUpdate` with its
  :class:`Level`, :class:`MarketStatus`, :class:`Gap`, :class:`RawFrame`), validated on construction;
- exact money: prices and sizes are :class:`~decimal.Decimal`, never floats, and convert exactly to
  the fixed-point integers of the wire format (:func:`price_to_e4`, :func:`size_to_e2` and back);
- the small vocabulary mappings from Kalshi's strings (:func:`side_from_kalshi`,
  :func:`status_from_kalshi`).

Conventions shared by every record (the wire schema ``schemas/ssmd.capnp`` says the same):
times are Unix nanoseconds; ``received_ns`` is when ssmd received the source frame (always set);
``exchange_ns`` is the exchange's own time for the event, ``None`` when the message had none;
``sid``/``seq``/``connection_id`` are ``None`` when unknown or absent (Kalshi numbers sids and seqs
from 1, so the wire encodes ``None`` as 0). ``flagged`` marks records received between a detected
exchange gap and the ticker's next book snapshot.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, fields
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any, Literal, TypeAlias, TypeVar, get_args

from ssmd.errors import SsmdError

Side = Literal["buy", "sell"]
BookKind = Literal["snapshot", "change"]
Status = Literal[
    "open", "closed", "halted",  # the seed's statuses, kept for old data
    "initialized", "active", "inactive", "determined", "disputed", "amended", "finalized", "unknown",
]
GapKind = Literal["exchange_seq", "seq_reset", "disconnect", "bus"]

SIDES: frozenset[str] = frozenset(get_args(Side))
BOOK_KINDS: frozenset[str] = frozenset(get_args(BookKind))
STATUSES: frozenset[str] = frozenset(get_args(Status))
GAP_KINDS: frozenset[str] = frozenset(get_args(GapKind))

PRICE_PLACES = 4
"""Prices are dollars on a grid of 0.0001 (every Kalshi price grid fits it)."""
SIZE_PLACES = 2
"""Sizes and counts are contracts on a grid of 0.01 (Kalshi's fractional contracts)."""

U64_END = 1 << 64
"""One past the largest UInt64 a record field holds (ids, seqs and times are checked against it)."""
_I64_END = 1 << 63
# The widest context: scaling by a power of ten never rounds, whatever the input's digits or exponent.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
_MAX_ADJUSTED = 19  # no price or size in range has a digit at 10^20 or above
_ONE = Decimal(1)


class RecordError(SsmdError, ValueError):
    """A record field has a value the record cannot hold (wrong type, off-grid, out of range)."""


@functools.lru_cache(maxsize=1 << 16, typed=True)
def _scaled(value: Decimal, places: int) -> int | None:
    # Cached: the same prices and sizes recur all day, and an exact scale costs ~1 us uncached.
    scaled = value.scaleb(places, _EXACT)
    fixed = int(scaled)
    return fixed if fixed == scaled else None


def _to_fixed(value: Decimal, places: int, what: str) -> int:
    if type(value) is not Decimal:
        msg = f"{what} must be a Decimal, got {type(value).__name__} {value!r}"
        raise RecordError(msg)
    if not value.is_finite():
        msg = f"{what} must be finite, got {value}"
        raise RecordError(msg)
    if value.adjusted() > _MAX_ADJUSTED:  # before int(): 1E+999999999 would build a billion-digit int
        msg = f"{what} {value} is out of range"
        raise RecordError(msg)
    fixed = _scaled(value, places)
    if fixed is None:
        msg = f"{what} {value} has more than {places} decimal places"
        raise RecordError(msg)
    return fixed


# Valid conversions, by value: every record construction and encode converts its prices and sizes,
# and the same few hundred recur all day. Only finite Decimals are looked up (a signaling NaN
# cannot be hashed); equal Decimals ("0.56", "0.5600") have the same fixed-point value.
_E4_CACHE: dict[Decimal, int] = {}
_E2_CACHE: dict[Decimal, int] = {}
_CACHE_LIMIT = 1 << 14


def _remember(cache: dict[Decimal, int], value: Decimal, fixed: int) -> int:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[value] = fixed
    return fixed


def price_to_e4(price: Decimal, what: str = "price") -> int:
    """Exact dollars x 10^4 of ``price``; RecordError unless it is in [0, 1] on the 0.0001 grid."""
    if type(price) is Decimal and price.is_finite() and (known := _E4_CACHE.get(price)) is not None:
        return known
    fixed = _to_fixed(price, PRICE_PLACES, what)
    if not 0 <= fixed <= 10_000:
        msg = f"{what} {price} is outside [0, 1]"
        raise RecordError(msg)
    return _remember(_E4_CACHE, price, fixed)


def size_to_e2(size: Decimal, what: str = "size") -> int:
    """Exact contracts x 10^2 of ``size``; RecordError unless it is >= 0 on the 0.01 grid."""
    if type(size) is Decimal and size.is_finite() and (known := _E2_CACHE.get(size)) is not None:
        return known
    fixed = _to_fixed(size, SIZE_PLACES, what)
    if not 0 <= fixed < _I64_END:
        msg = f"{what} {size} is negative or too large"
        raise RecordError(msg)
    return _remember(_E2_CACHE, size, fixed)


@functools.lru_cache(maxsize=1 << 16)
def _unscaled(fixed: int, places: int) -> Decimal:
    return Decimal(fixed).scaleb(-places, _EXACT)


def e4_to_price(fixed: int) -> Decimal:
    """The Decimal dollars of a fixed-point price (``5600 -> Decimal("0.5600")``); RecordError
    unless it is in [0, 10000]."""
    if type(fixed) is not int or not 0 <= fixed <= 10_000:
        msg = f"fixed-point price {fixed!r} is outside [0, 10000]"
        raise RecordError(msg)
    return _unscaled(fixed, PRICE_PLACES)


def e2_to_size(fixed: int) -> Decimal:
    """The Decimal contracts of a fixed-point size (``13600 -> Decimal("136.00")``); RecordError
    if negative."""
    if type(fixed) is not int or not 0 <= fixed < _I64_END:
        msg = f"fixed-point size {fixed!r} is negative or too large"
        raise RecordError(msg)
    return _unscaled(fixed, SIZE_PLACES)


def _check_time(name: str, value: int) -> None:
    if type(value) is not int or not 0 <= value < U64_END:
        msg = f"{name} must be an int in [0, 2**64), got {value!r}"
        raise RecordError(msg)


def _check_optional_id(name: str, value: int | None) -> None:
    # 0 is the wire's "none", so a present id/seq/time must be >= 1 to survive a round trip.
    if value is not None and (type(value) is not int or not 0 < value < U64_END):
        msg = f"{name} must be None or an int in [1, 2**64), got {value!r}"
        raise RecordError(msg)


def _check_common(rec: Trade | OrderBookUpdate | MarketStatus) -> None:
    if type(rec.ticker) is not str or not rec.ticker:
        msg = f"ticker must be a non-empty str, got {rec.ticker!r}"
        raise RecordError(msg)
    received, exchange, sid, seq, connection = rec.received_ns, rec.exchange_ns, rec.sid, rec.seq, rec.connection_id
    # One expression for the common case (records are built on every hot path); the helpers below
    # say what is wrong when it fails.
    if (type(received) is int and 0 <= received < U64_END
            and (exchange is None or (type(exchange) is int and 0 < exchange < U64_END))
            and (sid is None or (type(sid) is int and 0 < sid < U64_END))
            and (seq is None or (type(seq) is int and 0 < seq < U64_END))
            and (connection is None or (type(connection) is int and 0 < connection < U64_END))):
        return
    _check_time("received_ns", received)
    _check_optional_id("exchange_ns", exchange)
    _check_optional_id("sid", sid)
    _check_optional_id("seq", seq)
    _check_optional_id("connection_id", connection)


def _check_flags(**flags: bool) -> None:
    for name, value in flags.items():
        if type(value) is not bool:
            msg = f"{name} must be a bool, got {value!r}"
            raise RecordError(msg)


def _check_member(name: str, value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        msg = f"{name} must be one of {sorted(allowed)}, got {value!r}"
        raise RecordError(msg)


@dataclass(frozen=True, slots=True)
class Level:
    """One price level of a book side: YES ``price`` in dollars and the ABSOLUTE ``size`` there.

    Size 0 in a change means "this level is now empty".
    """

    price: Decimal
    size: Decimal

    def __post_init__(self) -> None:
        price_to_e4(self.price, "level price")
        size_to_e2(self.size, "level size")


@dataclass(frozen=True, slots=True)
class Trade:
    """A public trade print on a market, on the YES contract.

    ``taker_side`` is "buy" when the taker bought YES and "sell" when the taker sold YES
    (see :func:`side_from_kalshi`). ``no_price`` is ``1 - yes_price`` (Kalshi's invariant).
    """

    ticker: str
    yes_price: Decimal
    count: Decimal
    taker_side: Side
    trade_id: str
    received_ns: int
    exchange_ns: int | None = None
    sid: int | None = None
    seq: int | None = None
    connection_id: int | None = None
    flagged: bool = False
    block_trade: bool = False

    def __post_init__(self) -> None:
        _check_common(self)
        price_to_e4(self.yes_price, "yes_price")
        size_to_e2(self.count, "count")
        if self.taker_side not in SIDES:
            _check_member("taker_side", self.taker_side, SIDES)
        if type(self.flagged) is not bool or type(self.block_trade) is not bool:
            _check_flags(flagged=self.flagged, block_trade=self.block_trade)
        if type(self.trade_id) is not str:
            msg = f"trade_id must be a str, got {self.trade_id!r}"
            raise RecordError(msg)

    @property
    def no_price(self) -> Decimal:
        return _ONE - self.yes_price


@dataclass(frozen=True, slots=True)
class OrderBookUpdate:
    """A change to, or a whole snapshot of, one market's book, normalized to the YES contract.

    ``bids`` are YES bids, best (highest) first; ``asks`` are YES asks, best (lowest) first, derived
    from Kalshi's NO bids (ask price = 1 - NO bid price). In a ``"snapshot"`` the lists are the
    whole book; in a ``"change"`` they hold only changed levels with their new absolute sizes, so
    applying a change twice is harmless.
    """

    ticker: str
    kind: BookKind
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    received_ns: int
    exchange_ns: int | None = None
    sid: int | None = None
    seq: int | None = None
    connection_id: int | None = None
    flagged: bool = False

    def __post_init__(self) -> None:
        _check_common(self)
        if self.kind not in BOOK_KINDS:
            _check_member("kind", self.kind, BOOK_KINDS)
        if type(self.flagged) is not bool:
            _check_flags(flagged=self.flagged)
        for side in (self.bids, self.asks):
            if type(side) is not tuple:
                _refuse_levels(side)
            for level in side:
                if type(level) is not Level:
                    _refuse_levels(side)


def _refuse_levels(side: object) -> None:
    msg = f"bids and asks must be tuples of Level, got {side!r}"
    raise RecordError(msg)


@dataclass(frozen=True, slots=True)
class MarketStatus:
    """A market lifecycle event and the status it puts the market in.

    ``event_type`` is Kalshi's ``event_type`` text verbatim ("" when the status came from
    elsewhere, e.g. REST). ``result`` and ``settlement_value`` come with "determined" events.
    """

    ticker: str
    status: Status
    received_ns: int
    exchange_ns: int | None = None
    sid: int | None = None
    seq: int | None = None
    connection_id: int | None = None
    event_type: str = ""
    result: str = ""
    settlement_value: Decimal | None = None
    open_ns: int | None = None
    close_ns: int | None = None

    def __post_init__(self) -> None:
        _check_common(self)
        _check_member("status", self.status, STATUSES)
        if type(self.event_type) is not str or type(self.result) is not str:
            msg = "event_type and result must be str"
            raise RecordError(msg)
        if self.settlement_value is not None:
            price_to_e4(self.settlement_value, "settlement_value")
        _check_optional_id("open_ns", self.open_ns)
        _check_optional_id("close_ns", self.close_ns)


@dataclass(frozen=True, slots=True)
class Gap:
    """A hole in one ticker's data (``ticker`` "" = the whole connection or subscription).

    ``end_ns`` None means the gap is still open. ``expected_seq``/``received_seq`` describe a
    sequence jump; ``missing`` counts missing sequence numbers (0 when unknown or not applicable).
    ``stream`` names the JetStream stream or subject of a bus gap.
    """

    ticker: str
    kind: GapKind
    start_ns: int
    received_ns: int
    end_ns: int | None = None
    connection_id: int | None = None
    sid: int | None = None
    expected_seq: int | None = None
    received_seq: int | None = None
    missing: int = 0
    stream: str = ""

    def __post_init__(self) -> None:
        if type(self.ticker) is not str or type(self.stream) is not str:
            msg = "ticker and stream must be str"
            raise RecordError(msg)
        _check_member("kind", self.kind, GAP_KINDS)
        _check_time("start_ns", self.start_ns)
        _check_time("received_ns", self.received_ns)
        _check_time("missing", self.missing)
        for name in ("end_ns", "connection_id", "sid", "expected_seq", "received_seq"):
            _check_optional_id(name, getattr(self, name))
        if self.end_ns is not None and self.end_ns < self.start_ns:
            msg = f"gap end_ns {self.end_ns} is before start_ns {self.start_ns}"
            raise RecordError(msg)


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One exchange frame exactly as received (``data``), with where and when it came from.

    ``channel`` is the frame's message type; ``ticker`` is the market it names ("" if none);
    ``frame_no`` is its 1-based position on its connection.
    """

    received_ns: int
    channel: str
    data: bytes
    connection_id: int | None = None
    sid: int | None = None
    seq: int | None = None
    ticker: str = ""
    frame_no: int | None = None

    def __post_init__(self) -> None:
        _check_time("received_ns", self.received_ns)
        if type(self.channel) is not str or type(self.ticker) is not str:
            msg = "channel and ticker must be str"
            raise RecordError(msg)
        if type(self.data) is not bytes:
            msg = f"data must be bytes, got {type(self.data).__name__}"
            raise RecordError(msg)
        connection, sid, seq, frame_no = self.connection_id, self.sid, self.seq, self.frame_no
        if ((connection is None or (type(connection) is int and 0 < connection < U64_END))
                and (sid is None or (type(sid) is int and 0 < sid < U64_END))
                and (seq is None or (type(seq) is int and 0 < seq < U64_END))
                and (frame_no is None or (type(frame_no) is int and 0 < frame_no < U64_END))):
            return  # the common case in one expression, as in _check_common
        for name in ("connection_id", "sid", "seq", "frame_no"):
            _check_optional_id(name, getattr(self, name))


AnyRecord: TypeAlias = Trade | OrderBookUpdate | MarketStatus | Gap | RawFrame

_T = TypeVar("_T")


def unchecked_constructor(cls: type[_T]) -> Callable[..., _T]:
    """A positional constructor for the record class ``cls`` that skips ``__post_init__``.

    Only for decoders that have already checked every value the wire format does not guarantee
    (the codec): validation costs more than building the record, and decoding is a hot path.
    The function is generated (as :mod:`dataclasses` generates ``__init__``) because a straight
    line of slot stores costs half of a loop over them. The stores go to an unfrozen twin class
    with the same slots (plain attribute stores, which CPython specializes), and the object then
    becomes a ``cls`` by ``__class__`` assignment (allowed between identical slot layouts): half
    the cost of calling each slot's frozen setter.
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    twin = type(f"_Mutable{cls.__name__}", (), {"__slots__": getattr(cls, "__slots__", ())})
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls, "twin": twin}
    stores = "".join(f"    record.{name} = {name}\n" for name in names)
    source = (f"def construct({', '.join(names)}):\n    record = new(twin)\n{stores}"
              "    record.__class__ = cls\n    return record\n")
    exec(source, scope)  # names are the dataclass's own field identifiers, never outside input
    construct: Callable[..., _T] = scope["construct"]
    construct(*(None,) * len(names))  # TypeError now, not on first decode, if the layouts differ
    return construct


_KALSHI_SIDES: dict[str, Side] = {"yes": "buy", "bid": "buy", "no": "sell", "ask": "sell"}


def side_from_kalshi(taker_side: str) -> Side:
    """The YES-contract taker side of a Kalshi trade.

    Accepts ``taker_side``/``taker_outcome_side`` ("yes"/"no") or ``taker_book_side``
    ("bid"/"ask"): "yes"/"bid" -> "buy" (the taker bought YES); "no"/"ask" -> "sell" (the taker sold
    YES, i.e. bought NO, into a resting YES bid).
    """
    try:
        return _KALSHI_SIDES[taker_side]
    except KeyError:
        msg = f"unknown Kalshi taker side {taker_side!r}"
        raise RecordError(msg) from None


_KALSHI_STATUSES: dict[str, Status] = {
    # Market.status values (current vocabulary)
    "initialized": "initialized", "active": "active", "inactive": "inactive", "closed": "closed",
    "determined": "determined", "disputed": "disputed", "amended": "amended", "finalized": "finalized",
    # REST filter words and legacy object statuses
    "unopened": "initialized", "open": "active", "paused": "inactive", "settled": "finalized",
    # market_lifecycle_v2 event types that imply a status
    "created": "initialized", "activated": "active", "deactivated": "inactive",
}


def status_from_kalshi(text: str) -> Status:
    """The status a Kalshi market status word or lifecycle ``event_type`` implies.

    Words that imply no status (``close_date_updated``, ``metadata_updated``, ...) and words ssmd
    does not know map to "unknown", so new Kalshi vocabulary never stops a parser.
    """
    return _KALSHI_STATUSES.get(text, "unknown")
