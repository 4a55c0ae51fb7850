"""Parsing recorded Kalshi frames: current, late-2025 and legacy formats give the same exact values."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssmd.errors import DecodeError
from ssmd.normalize import parse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kalshi"


def _frames(name: str) -> list[bytes]:
    return [line.encode() for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def test_current_format_examples_from_the_reference() -> None:
    sub, snap, delta, ticker, trade, life = (parse.parse_frame(f) for f in _frames("current.jsonl"))
    assert isinstance(sub, parse.Other) and sub.header == parse.Header("subscribed", None, None, 1)
    assert isinstance(snap, parse.Snapshot)
    assert snap.ticker == "KXGOLDH-26AUG2711-T4615.99"
    assert snap.yes == ((100, 141000),) and snap.no == ((100, 10000), (200, 250000))
    assert isinstance(delta, parse.Delta)
    assert (delta.side, delta.price_e4, delta.delta_e2) == ("yes", 100, 1000)
    assert delta.exchange_ns == 1787838983996443000  # the microsecond RFC3339 ts beats ts_ms
    assert isinstance(ticker, parse.Other) and ticker.ticker == "KXGOLDH-26AUG2711-T4615.99"
    assert isinstance(trade, parse.TradePrint)
    assert (trade.yes_price_e4, trade.count_e2, trade.taker) == (3600, 13600, "no")
    assert trade.exchange_ns == 1669149841000000000
    assert isinstance(life, parse.Lifecycle)
    assert (life.event_type, life.result, life.settlement_e4) == ("determined", "yes", 10000)
    assert life.exchange_ns == 1694721700 * 10**9


@pytest.mark.parametrize("name", ["legacy.jsonl", "late2025.jsonl"])
def test_older_formats_parse_to_the_same_values(name: str) -> None:
    current = {type(m): m for m in (parse.parse_frame(f) for f in _frames("current.jsonl"))}
    for msg in (parse.parse_frame(f) for f in _frames(name)):
        if isinstance(msg, parse.Snapshot):
            assert (msg.yes, msg.no) == (current[parse.Snapshot].yes, current[parse.Snapshot].no)  # type: ignore[attr-defined]
        elif isinstance(msg, parse.Delta):
            cur = current[parse.Delta]
            assert (msg.side, msg.price_e4, msg.delta_e2) == (cur.side, cur.price_e4, cur.delta_e2)  # type: ignore[attr-defined]
        elif isinstance(msg, parse.TradePrint):
            cur = current[parse.TradePrint]
            assert (msg.yes_price_e4, msg.count_e2, msg.taker) == (cur.yes_price_e4, cur.count_e2, cur.taker)  # type: ignore[attr-defined]


def test_subpenny_prices_and_fractional_counts_are_exact() -> None:
    frame = (
        b'{"type":"orderbook_delta","sid":2,"seq":9,"msg":{"market_ticker":"T","market_id":"m",'
        b'"price_dollars":"0.0125","delta_fp":"-0.37","side":"no","ts_ms":5}}'
    )
    msg = parse.parse_frame(frame)
    assert isinstance(msg, parse.Delta)
    assert (msg.price_e4, msg.delta_e2, msg.exchange_ns) == (125, -37, 5_000_000)


@pytest.mark.parametrize(
    ("frame", "fragment"),
    [
        (b"not json", "frame is not JSON"),
        (b"[1,2]", "JSON object with a string 'type'"),
        (b'{"type":"trade","sid":"one","msg":{}}', "'sid' must be an integer"),
        (b'{"type":"orderbook_delta","sid":1,"seq":1,"msg":{"market_ticker":"T","side":"yes"}}', "missing field"),
        (
            b'{"type":"orderbook_delta","sid":1,"seq":1,"msg":{"market_ticker":"T","side":"up",'
            b'"price_dollars":"0.1","delta_fp":"1"}}',
            "side must be 'yes' or 'no'",
        ),
        (
            b'{"type":"trade","sid":1,"seq":1,"msg":{"market_ticker":"T","yes_price_dollars":"1.5",'
            b'"count_fp":"1","taker_side":"yes"}}',
            "outside 0..1",
        ),
        (
            b'{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{"market_ticker":"T",'
            b'"yes_dollars_fp":[["0.00001","1"]]}}',
            "finer than 0.0001",
        ),
    ],
)
def test_malformed_frames_say_what_is_wrong(frame: bytes, fragment: str) -> None:
    with pytest.raises(DecodeError) as err:
        parse.parse_frame(frame)
    assert fragment in str(err.value)


def test_unknown_types_and_fields_are_not_errors() -> None:
    msg = parse.parse_frame(b'{"type":"ticker_v3","sid":3,"msg":{"market_ticker":"X","new_field":1}}')
    assert isinstance(msg, parse.Other) and msg.ticker == "X"
    msg = parse.parse_frame(
        b'{"type":"trade","sid":1,"seq":1,"msg":{"market_ticker":"T","yes_price_dollars":"0.5",'
        b'"count_fp":"1.00","taker_book_side":"bid","brand_new":{"x":1}}}'
    )
    assert isinstance(msg, parse.TradePrint) and msg.taker == "bid"


def _delta(ts: str, price: str = "0.5600", delta: str = "-54.00") -> bytes:
    return (f'{{"type":"orderbook_delta","sid":1,"seq":2,"msg":{{"market_ticker":"A","price_dollars":"{price}",'
            f'"delta_fp":"{delta}","side":"yes","ts":"{ts}","ts_ms":1}}}}').encode()


_FIRST, _LAST = dt.datetime(1970, 1, 2), dt.datetime(2200, 1, 1)  # noqa: DTZ001 (hypothesis wants naive bounds)


@given(st.datetimes(min_value=_FIRST, max_value=_LAST), st.integers(1, 9), st.booleans())
def test_delta_times_are_read_as_datetime_reads_them(when: dt.datetime, digits: int, zulu: bool) -> None:
    """The cached whole-seconds path and datetime agree to the microsecond, whatever the fraction's length."""
    text = when.strftime("%Y-%m-%dT%H:%M:%S") + "." + f"{when.microsecond:06d}{when.microsecond % 997:03d}"[:digits]
    text += "Z" if zulu else "+00:00"
    expected = dt.datetime.fromisoformat(text.replace("Z", "+00:00")) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    ns = (expected.days * 86_400 + expected.seconds) * 10**9 + expected.microseconds * 1000
    for _ in range(2):  # the second time from the cache
        msg = parse.parse_frame(_delta(text))
        assert isinstance(msg, parse.Delta) and msg.exchange_ns == ns


def test_an_unreadable_time_falls_back_to_ts_ms_every_time() -> None:
    for ts in ("2026-13-27T11:00:00.1Z", "2026-08-27T11:00:00.-1Z", "yesterday") * 2:
        msg = parse.parse_frame(_delta(ts))
        assert isinstance(msg, parse.Delta) and msg.exchange_ns == 1_000_000, ts


def test_a_bad_price_or_count_is_refused_every_time() -> None:
    """Only values that parsed are remembered: a malformed string fails on every frame that carries it."""
    for _ in range(2):
        assert isinstance(parse.parse_frame(_delta("x", "0.5600", "1.00")), parse.Delta)
        with pytest.raises(DecodeError, match="price"):
            parse.parse_frame(_delta("x", "1.5000"))
        with pytest.raises(DecodeError, match="count"):
            parse.parse_frame(_delta("x", "0.5000", "1.005"))
