"""One partition function end to end, equal to nats-server's own partition() subject transform."""

from __future__ import annotations

import asyncio

import nats
from hypothesis import given
from hypothesis import strategies as st

from ssmd import names
from ssmd.devstack import NatsServer
from ssmd.partitioning import fnv1a32, partition_for


def test_fnv1a32_reference_vectors() -> None:
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C
    assert fnv1a32("foobar") == 0xBF9CF968


@given(st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-."), min_size=1, max_size=40))
def test_partition_in_range_and_stable(ticker: str) -> None:
    assert partition_for(ticker, 8) == partition_for(ticker, 8)
    assert 0 <= partition_for(ticker, 8) < 8


def test_server_partition_transform_agrees(nats_server: NatsServer) -> None:
    tickers = ["KXGOLDH-26AUG2711-T4615.99", "INXD-25-B4000", "KXBTC-25DEC31-B100000", "A", "B.C.D", "X-1", "Z9"]
    tickers += [f"KXT-{i}.{i % 7}" for i in range(40)]

    async def check() -> None:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        await js.add_stream(
            name="parts",
            subjects=["pt.*"],
            subject_transform={"src": "pt.*", "dest": "stored.{{partition(8,1)}}.{{wildcard(1)}}"},
        )
        for t in tickers:
            await js.publish(f"pt.{names.symbol_token(t)}", b"")
        for t in tickers:
            msg = await js.get_last_msg("parts", f"stored.*.{names.symbol_token(t)}")
            assert msg.subject.split(".")[1] == str(partition_for(t, 8)), t
        await nc.close()

    asyncio.run(check())
