"""Names: the seed's patterns exactly, validation, and the reversible symbol-to-token encoding."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssmd import names
from ssmd.errors import InvalidNameError

DAY = dt.date(2025, 12, 14)


def test_seed_patterns() -> None:
    assert names.raw_key("kalshi-dev", "kalshi", "trades", DAY, 0) == (
        "ssmd-raw/kalshi-dev/kalshi/2025/12/14/trades-00.jsonl.zst"
    )
    assert names.raw_manifest_key("kalshi-dev", "kalshi", DAY) == "ssmd-raw/kalshi-dev/kalshi/2025/12/14/manifest.json"
    assert names.normalized_key("kalshi-dev", "kalshi", "trade", DAY, "KXBTC-25DEC31-B100000") == (
        "ssmd-normalized/kalshi-dev/kalshi/v1/trade/2025/12/14/KXBTC-25DEC31-B100000/data.capnp.zst"
    )
    assert names.subject("kalshi-dev", "kalshi", "trade", "KXBTC-25DEC31-B100000") == (
        "kalshi-dev.kalshi.trade.KXBTC-25DEC31-B100000"
    )
    assert names.redis_key("kalshi-dev", "kalshi", "price", "KXBTC-25DEC31-B100000") == (
        "kalshi-dev:kalshi:price:KXBTC-25DEC31-B100000"
    )
    assert names.raw_prefix("kalshi-dev") == "ssmd-raw/kalshi-dev/"
    assert names.raw_prefix("kalshi-dev", "kalshi", DAY) == "ssmd-raw/kalshi-dev/kalshi/2025/12/14/"
    assert names.subject_wildcard("kalshi-dev", "kalshi", "trade") == "kalshi-dev.kalshi.trade.>"
    assert names.redis_pattern("kalshi-dev") == "kalshi-dev:*"


def test_dotted_ticker_stays_one_token() -> None:
    subj = names.subject("kalshi-dev", "kalshi", "trade", "KXGOLDH-26AUG2711-T4615.99")
    assert subj == "kalshi-dev.kalshi.trade.KXGOLDH-26AUG2711-T4615%2E99"
    assert len(subj.split(".")) == 4
    assert names.symbol_of_subject(subj) == "KXGOLDH-26AUG2711-T4615.99"


def test_streams_and_buckets_share_the_env_prefix() -> None:
    assert names.stream_name("kalshi-dev", "kalshi", "raw") == "kalshi-dev_kalshi_raw"
    assert names.kv_bucket("kalshi-dev", "offsets") == "kalshi-dev_offsets"
    # 'kalshi' is a prefix of 'kalshi-dev' as a string, but not as an env prefix.
    assert not names.stream_name("kalshi-dev", "kalshi", "raw").startswith(names.stream_prefix("kalshi"))


@pytest.mark.parametrize("env", ["", "Kalshi-dev", "kalshi_dev", "-dev", "dev-", "a.b", "a b", "x" * 65, "dév"])
def test_bad_env_names(env: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid environment name"):
        names.subject(env, "kalshi", "trade", "T")


@pytest.mark.parametrize("symbol", ["", "a/b", ".", "..", "a b", "tab\there"])
def test_bad_symbols_for_keys(symbol: str) -> None:
    with pytest.raises(InvalidNameError):
        names.normalized_key("kalshi-dev", "kalshi", "trade", DAY, symbol)


def test_bad_hour_and_date() -> None:
    with pytest.raises(InvalidNameError, match="hour"):
        names.raw_key("kalshi-dev", "kalshi", "trade", DAY, 24)
    with pytest.raises(InvalidNameError, match="date"):
        names.raw_key("kalshi-dev", "kalshi", "trade", dt.datetime(2025, 1, 1, tzinfo=dt.UTC), 0)


@pytest.mark.parametrize("token", ["", "a.b", "a*", ">", "%2", "%zz", "%41", "%2e", "a b"])
def test_tokens_we_never_produce_are_rejected(token: str) -> None:
    with pytest.raises(InvalidNameError):
        names.symbol_from_token(token)


_NATS_TOKEN_FORBIDDEN = set(".*> \t\r\n")


@given(st.text(min_size=1, max_size=80))
def test_symbol_token_roundtrip_any_text(symbol: str) -> None:
    token = names.symbol_token(symbol)
    assert token and not (_NATS_TOKEN_FORBIDDEN & set(token))
    assert token.isascii() and token.isprintable()
    assert names.symbol_from_token(token) == symbol


_ticker_chars = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")


@given(st.text(_ticker_chars, min_size=1, max_size=60))
def test_kalshi_like_tickers_only_escape_dots(ticker: str) -> None:
    token = names.symbol_token(ticker)
    assert token == ticker.replace(".", "%2E")
    assert names.symbol_of_subject(names.subject("kalshi-dev", "kalshi", "orderbook", ticker)) == ticker


@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30))
def test_symbol_token_is_injective(a: str, b: str) -> None:
    if a != b:
        assert names.symbol_token(a) != names.symbol_token(b)
