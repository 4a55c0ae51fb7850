"""Routing facts from raw frames agree with a full JSON decode, on every frame type the simulator sends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest
from connector_helpers import Recorder, connector
from hypothesis import given
from hypothesis import strategies as st

from ssmd.capture.headers import envelope, seq_of, type_of
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
        assert envelope(raw) == (type_of(raw), sid_of(raw), seq_of(raw), ticker_of(raw)), raw


def test_escaped_and_odd_frames() -> None:
    assert ticker_of(b'{"type":"trade","msg":{"market_ticker":"KX\\u002dA.5","count_fp":"1.00"}}') == "KX-A.5"
    assert ticker_of(b'{"type":"ok","id":3,"sid":1,"seq":4,"msg":{"market_tickers":["A","B"]}}') is None
    assert ticker_of(b'{"type":"event_lifecycle","msg":{"event_ticker":"KXBTC-26JAN01"}}') == "KXBTC-26JAN01"
    assert ticker_of(b'{"type":"trade","msg":{"market_ticker":"UNTERMINATED') is None
    assert ticker_of(b"not json at all") is None
    assert sid_of(b'{"id":2,"type":"error","msg":{"code":8,"msg":"Unknown channel name"}}') is None
    assert sid_of(b'{"type":"orderbook_delta","sid":12,"seq":3,"msg":{}}') == 12


_PIECES = ['{"type":"', "orderbook_delta", "trade", '","sid":', '"sid":', ',"seq":', '"seq":', ',"msg":{', '"msg":',
           '"market_ticker":"', '"event_ticker":"', "KX-A.5", "\\u002d", '"', "0", "7", "18446744073709551616",
           "é", "}", ",", " ", "Z"]


@given(st.lists(st.sampled_from(_PIECES), max_size=14))
def test_envelope_agrees_with_the_four_scans(pieces: list[str]) -> None:
    """The one-match fast path gives the scans' answers for any frame, well formed or not."""
    for raw in ("".join(pieces).encode(), ('{"type":"trade","sid":3,"seq":9,"msg":{"market_ticker":"' +
                                           "".join(pieces)).encode()):
        assert envelope(raw) == (type_of(raw), sid_of(raw), seq_of(raw), ticker_of(raw)), raw
