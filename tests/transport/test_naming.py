"""Names and keys: reversible tokens, the partition function nats-server agrees with."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from nats.aio.client import Client as NATS

from ssmd.transport import keys, naming
from ssmd.transport.streams import TopicLayout, ensure_stream


@given(st.binary(max_size=40))
def test_key_token_round_trips_and_is_one_token(key: bytes) -> None:
    token = keys.key_token(key)
    assert token and not any(c in token for c in ".*> \t\r\n")
    assert keys.key_from_token(token) == key


@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30))
def test_topic_tokens_are_injective(a: str, b: str) -> None:
    if a != b:
        assert naming.subject_token(a) != naming.subject_token(b)
        assert naming.bucket_token(a) != naming.bucket_token(b)
        assert naming.stream_name(a) != naming.stream_name(b)


def test_names_of_a_dotted_topic() -> None:
    topic = "kalshi-dev.kalshi.raw.trade"
    assert naming.stream_name(topic).startswith("FAUST_kalshi-dev_kalshi_raw_trade_")
    assert naming.partition_subject(topic, 3) == "faust.kalshi-dev%2Ekalshi%2Eraw%2Etrade.3"
    assert naming.offset_key(topic, 3).endswith(".3")


async def test_server_partitions_public_subjects_like_key_partition(nats_server: Any, nc: NATS) -> None:
    """The stream's {{partition(N,1)}} transform and ``keys.partition_for`` pick the same partition."""
    js = nc.jetstream()
    layout = TopicLayout("dev.kalshi.trade.*", partitions=5)
    await ensure_stream(js, layout)
    tickers = [f"KXBTC-25DEC31-B{i}" for i in range(40)] + ["KXGOLDH-26AUG2711-T4615.99"]
    seen: list[str] = []

    async def on_core(msg: Any) -> None:
        seen.append(msg.subject)

    await nc.subscribe("dev.kalshi.trade.>", cb=on_core)
    for t in tickers:
        await js.publish(layout.publish_subject(0, t.encode()), b"x")
    for t in tickers:
        p = keys.partition_for(t.encode(), 5)
        stored_subject = f"{naming.partition_subject(layout.topic, p)}.{keys.key_token(t.encode())}"
        stored = await js.get_last_msg(layout.stream, stored_subject)
        assert stored.data == b"x"
    await asyncio.sleep(0.2)
    # Core subscribers see the public subject, with the ticker as the last token.
    assert sorted(seen) == sorted(f"dev.kalshi.trade.{keys.key_token(t.encode())}" for t in tickers)
