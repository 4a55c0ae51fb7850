"""Fixed-point prices and counts as Kalshi writes them, never through ``float``.

Prices are dollar strings with 4 decimals (``"0.5600"``), counts are contract strings with 2 decimals
(``"10.00"``, fractional contracts exist). Two exact representations are offered:

- ``Decimal`` (:func:`parse_price`, :func:`format_price`, ...), for code that reasons about values;
- integer units (:data:`PRICE_SCALE` = 10,000 per dollar, :data:`COUNT_SCALE` = 100 per contract), for
  hot paths and for books keyed by price. Every current price grid (down to 0.0001) and every count
  (down to 0.01) is an integer in these units.

The legacy (pre-2026-03-12) wire format used integer cents for prices and whole contracts for counts.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Final

PRICE_SCALE: Final = 10_000
COUNT_SCALE: Final = 100
CENT: Final = PRICE_SCALE // 100
ONE_DOLLAR: Final = PRICE_SCALE

_PRICE_Q: Final = Decimal("0.0001")
_COUNT_Q: Final = Decimal("0.01")
_PRICE_STRINGS: Final = [f"{p // PRICE_SCALE}.{p % PRICE_SCALE:04d}" for p in range(PRICE_SCALE + 1)]


def _decimal(text: str | Decimal, what: str) -> Decimal:
    try:
        value = text if isinstance(text, Decimal) else Decimal(text)
    except (InvalidOperation, TypeError, ValueError) as e:
        msg = f"{what} {text!r} is not a decimal number"
        raise ValueError(msg) from e
    if not value.is_finite():
        msg = f"{what} {text!r} is not finite"
        raise ValueError(msg)
    return value


def parse_price(text: str | Decimal) -> Decimal:
    """A dollar price string (any number of decimals) as ``Decimal``; ``ValueError`` if malformed."""
    return _decimal(text, "price")


def parse_count(text: str | Decimal) -> Decimal:
    """A count string (``"10.00"``, possibly signed for deltas) as ``Decimal``."""
    return _decimal(text, "count")


def format_price(value: Decimal) -> str:
    """4-decimal dollar string; ``ValueError`` if the value needs more precision."""
    q = value.quantize(_PRICE_Q)
    if q != value:
        msg = f"price {value} is not a multiple of 0.0001"
        raise ValueError(msg)
    return f"{q:.4f}"


def format_count(value: Decimal) -> str:
    """2-decimal count string; ``ValueError`` if the value needs more precision."""
    q = value.quantize(_COUNT_Q)
    if q != value:
        msg = f"count {value} is not a multiple of 0.01"
        raise ValueError(msg)
    return f"{q:.2f}"


def price_units(text: str | Decimal) -> int:
    """A price as integer ten-thousandths of a dollar, exactly (``ValueError`` if not representable)."""
    value = _decimal(text, "price") * PRICE_SCALE
    if value != value.to_integral_value():
        msg = f"price {text!r} is finer than 0.0001"
        raise ValueError(msg)
    return int(value)


def count_units(text: str | Decimal) -> int:
    """A count as integer hundredths of a contract, exactly (``ValueError`` if not representable)."""
    value = _decimal(text, "count") * COUNT_SCALE
    if value != value.to_integral_value():
        msg = f"count {text!r} is finer than 0.01"
        raise ValueError(msg)
    return int(value)


def price_str(units: int) -> str:
    """Integer price units (0..10,000) as the 4-decimal wire string; cached, for hot paths."""
    return _PRICE_STRINGS[units]


def count_str(units: int) -> str:
    """Integer count units (hundredths, possibly negative) as the 2-decimal wire string; memoized."""
    text = _COUNT_STRINGS.get(units)
    if text is None:
        if units < 0:
            text = f"-{-units // COUNT_SCALE}.{-units % COUNT_SCALE:02d}"
        else:
            text = f"{units // COUNT_SCALE}.{units % COUNT_SCALE:02d}"
        if len(_COUNT_STRINGS) < 200_000:
            _COUNT_STRINGS[units] = text
    return text


_COUNT_STRINGS: dict[int, str] = {}


def units_to_price(units: int) -> Decimal:
    return Decimal(units).scaleb(-4)


def units_to_count(units: int) -> Decimal:
    return Decimal(units).scaleb(-2)


def cents(units: int) -> int:
    """Price units as legacy integer cents; ``ValueError`` for a sub-penny price."""
    whole, rest = divmod(units, CENT)
    if rest:
        msg = f"price {price_str(units)} has no integer-cents form"
        raise ValueError(msg)
    return whole


def whole_contracts(units: int) -> int:
    """Count units as a legacy integer count; ``ValueError`` for a fractional count."""
    whole, rest = divmod(units, COUNT_SCALE)
    if rest:
        msg = f"count {count_str(units)} has no integer form"
        raise ValueError(msg)
    return whole
