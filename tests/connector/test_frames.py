"""Routing facts from raw frames agree with a full JSON decode, on every frame type the simulator sends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest
from connector_helpers import Recorder, connector

from ssmd.connector.frames import sid_of, ticker_of
from ssmd.sim import Simulator


def _decoded_ticker(raw: bytes) -> str | None:
    msg = msgspec.json.decode(raw).get("msg")
    if not isinstance(msg, dict):
        return None
    value = msg.get("market_ticker", msg.get("event_ticker"))
    return value if isinstance(value, str) else None


@pytest.mark.parametrize("sim", [{"lifecycle_prob": 0.2}], indirect=True)
async def test_ticker_of_matches_a_full_decode(sim: Simulator, key_path: Path) -> None:
    rec = Recorder()
    async with connector(sim, key_path, rec, channels=("orderbook_delta", "trade", "ticker")) as c:
        async with asyncio.timeout(5):
            await c.wait_ready()
        await sim.step(2000)
        await rec.until(lambda: len(rec.frames) == len(sim.ground_truth.frames(1)))
    types = {msgspec.json.decode(raw)["type"] for raw, _, _ in rec.frames}
    assert {"orderbook_snapshot", "orderbook_delta", "trade", "ticker", "market_lifecycle_v2", "event_fee_update",
            "subscribed"} <= types
    for raw, _, _ in rec.frames:
        assert ticker_of(raw) == _decoded_ticker(raw), raw
        frame = msgspec.json.decode(raw)
        assert sid_of(raw) == frame.get("sid", frame["msg"].get("sid")), raw


def test_escaped_and_odd_frames() -> None:
    assert ticker_of(b'{"type":"trade","msg":{"market_ticker":"KX\\u002dA.5","count_fp":"1.00"}}') == "KX-A.5"
    assert ticker_of(b'{"type":"ok","id":3,"sid":1,"seq":4,"msg":{"market_tickers":["A","B"]}}') is None
    assert ticker_of(b'{"type":"event_lifecycle","msg":{"event_ticker":"KXBTC-26JAN01"}}') == "KXBTC-26JAN01"
    assert ticker_of(b'{"type":"trade","msg":{"market_ticker":"UNTERMINATED') is None
    assert ticker_of(b"not json at all") is None
    assert sid_of(b'{"id":2,"type":"error","msg":{"code":8,"msg":"Unknown channel name"}}') is None
    assert sid_of(b'{"type":"orderbook_delta","sid":12,"seq":3,"msg":{}}') == 12
