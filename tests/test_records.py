"""Typed records: exact fixed-point conversion, validation on construction, Kalshi vocabulary."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssmd.errors import SsmdError
from ssmd.records import (
    Gap,
    Level,
    MarketStatus,
    OrderBookUpdate,
    RawFrame,
    RecordError,
    Trade,
    e2_to_size,
    e4_to_price,
    price_to_e4,
    side_from_kalshi,
    size_to_e2,
    status_from_kalshi,
    unchecked_constructor,
)

TICKER = "KXGOLDH-26AUG2711-T4615.99"
NOW = 1_787_838_983_996_000_000


def trade(**changes: object) -> Trade:
    fields: dict[str, object] = {
        "ticker": TICKER, "yes_price": Decimal("0.3600"), "count": Decimal("136.00"), "taker_side": "sell",
        "trade_id": "d91bc706", "received_ns": NOW,
    }
    fields.update(changes)
    return Trade(**fields)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=10_000))
def test_price_fixed_point_round_trips_exactly(fixed: int) -> None:
    price = e4_to_price(fixed)
    assert price_to_e4(price) == fixed
    assert price == Decimal(fixed) / 10_000


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_size_fixed_point_round_trips_exactly(fixed: int) -> None:
    assert size_to_e2(e2_to_size(fixed)) == fixed


@pytest.mark.parametrize(
    ("text", "fixed"),
    [("0.5600", 5600), ("0.56", 5600), ("0.560000", 5600), ("0.960", 9600), ("1", 10_000), ("0", 0), ("0E-7", 0)],
)
def test_price_strings_from_kalshi_convert_exactly(text: str, fixed: int) -> None:
    assert price_to_e4(Decimal(text)) == fixed


def test_values_off_the_grid_are_refused_with_the_reason() -> None:
    with pytest.raises(RecordError, match="more than 4 decimal places"):
        price_to_e4(Decimal("0.56001"))
    with pytest.raises(RecordError, match="more than 2 decimal places"):
        size_to_e2(Decimal("1.001"))
    # Many digits must not be rounded onto the grid by a limited decimal context.
    with pytest.raises(RecordError, match="decimal places"):
        price_to_e4(Decimal("0.5000000000000000000000000000000001"))
    with pytest.raises(RecordError, match="decimal places"):
        price_to_e4(Decimal("1E-20000"))
    assert price_to_e4(Decimal("0E-20000")) == 0


def test_values_out_of_range_or_not_decimal_are_refused() -> None:
    with pytest.raises(RecordError, match=r"outside \[0, 1\]"):
        price_to_e4(Decimal("1.0001"))
    with pytest.raises(RecordError, match="negative"):
        size_to_e2(Decimal("-1"))
    with pytest.raises(RecordError, match="must be a Decimal, got float"):
        price_to_e4(0.5)  # type: ignore[arg-type]
    with pytest.raises(RecordError, match="finite"):
        size_to_e2(Decimal("NaN"))
    with pytest.raises(RecordError, match="out of range"):
        size_to_e2(Decimal("1E+999999999"))
    with pytest.raises(RecordError, match="outside"):
        e4_to_price(10_001)


def test_record_errors_are_ssmd_errors_and_value_errors() -> None:
    assert issubclass(RecordError, SsmdError)
    assert issubclass(RecordError, ValueError)


def test_trade_no_price_is_the_complement() -> None:
    assert trade(yes_price=Decimal("0.3600")).no_price == Decimal("0.6400")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"yes_price": Decimal("1.5")}, "yes_price"),
        ({"count": Decimal("-2")}, "count"),
        ({"count": 3}, "Decimal"),
        ({"taker_side": "yes"}, "taker_side"),
        ({"ticker": ""}, "ticker"),
        ({"seq": 0}, "seq"),  # 0 is the wire's "none": a present seq is >= 1
        ({"sid": -1}, "sid"),
        ({"received_ns": 2**64}, "received_ns"),
        ({"exchange_ns": 1.5}, "exchange_ns"),
        ({"flagged": 1}, "flagged"),
    ],
)
def test_trade_validates_on_construction(changes: dict[str, object], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        trade(**changes)


def test_book_levels_are_validated() -> None:
    with pytest.raises(RecordError, match="level price"):
        Level(Decimal("0.12345"), Decimal(1))
    with pytest.raises(RecordError, match="tuples of Level"):
        OrderBookUpdate(TICKER, "change", [Level(Decimal("0.5"), Decimal(0))], (), NOW)  # type: ignore[arg-type]
    with pytest.raises(RecordError, match="kind"):
        OrderBookUpdate(TICKER, "delta", (), (), NOW)  # type: ignore[arg-type]


def test_status_gap_and_raw_validate() -> None:
    with pytest.raises(RecordError, match="status"):
        MarketStatus(TICKER, "settled", NOW)  # type: ignore[arg-type]
    with pytest.raises(RecordError, match="settlement_value"):
        MarketStatus(TICKER, "determined", NOW, settlement_value=Decimal("2"))
    with pytest.raises(RecordError, match="before start_ns"):
        Gap(TICKER, "disconnect", start_ns=10, received_ns=20, end_ns=5)
    with pytest.raises(RecordError, match="kind"):
        Gap(TICKER, "hole", start_ns=10, received_ns=20)  # type: ignore[arg-type]
    with pytest.raises(RecordError, match="bytes"):
        RawFrame(NOW, "trade", "text, not bytes")  # type: ignore[arg-type]


def test_records_are_frozen_values() -> None:
    first, second = trade(), trade()
    assert first == second and hash(first) == hash(second)
    with pytest.raises(AttributeError):
        first.count = Decimal(1)  # type: ignore[misc]


def test_unchecked_constructor_builds_equal_records() -> None:
    build = unchecked_constructor(Trade)
    expected = trade(sid=3, seq=9)
    built = build(TICKER, Decimal("0.36"), Decimal("136"), "sell", "d91bc706", NOW, None, 3, 9, None, False, False)
    assert built == expected


@pytest.mark.parametrize(
    ("kalshi", "side"), [("yes", "buy"), ("bid", "buy"), ("no", "sell"), ("ask", "sell")]
)
def test_taker_side_mapping(kalshi: str, side: str) -> None:
    assert side_from_kalshi(kalshi) == side


def test_unknown_taker_side_is_a_clear_error() -> None:
    with pytest.raises(RecordError, match="taker side 'maybe'"):
        side_from_kalshi("maybe")


@pytest.mark.parametrize(
    ("kalshi", "status"),
    [
        ("active", "active"), ("finalized", "finalized"), ("settled", "finalized"), ("paused", "inactive"),
        ("unopened", "initialized"), ("created", "initialized"), ("deactivated", "inactive"),
        ("determined", "determined"), ("close_date_updated", "unknown"), ("brand_new_word", "unknown"),
    ],
)
def test_status_mapping(kalshi: str, status: str) -> None:
    assert status_from_kalshi(kalshi) == status
