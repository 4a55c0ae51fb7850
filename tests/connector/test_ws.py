"""The WebSocket slot at the frame level, against a real websockets server sending awkward frames:
sizes on every length encoding, fragments, pings, binary, a frame split into one-byte TCP writes, and a
close frame. The same bytes must come out, in order, with and without compression."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve

from ssmd.connector.ws import WsConnection
from ssmd.kalshi.auth import generate_private_key

SPLIT = b"split-" * 40
EXPECTED = [b"a", b"x" * 200, b"y" * 70_000, b"frag1-frag2-frag3", b"\x00\x01bin", SPLIT, b"last"]


async def _handler(ws: ServerConnection) -> None:
    await ws.send("a")
    await ws.send("x" * 200)  # 16-bit length
    await ws.send("y" * 70_000)  # 64-bit length
    await ws.send(["frag1-", "frag2-", "frag3"])  # a fragmented message
    pong = await ws.ping(b"hi")
    await ws.send(b"\x00\x01bin")
    await asyncio.wait_for(pong, 2)  # the client answered the ping
    if not ws.request or "permessage-deflate" not in ws.request.headers.get("Sec-WebSocket-Extensions", ""):
        frame = bytes([0x81, 126]) + len(SPLIT).to_bytes(2, "big") + SPLIT
        for i in range(len(frame)):  # one byte per TCP write: every partial-header state
            ws.transport.write(frame[i : i + 1])
            await asyncio.sleep(0)
    else:
        await ws.send(SPLIT.decode())
    await ws.send("last")
    await ws.close(1001, "bye")


@pytest.fixture
async def server_url() -> AsyncIterator[str]:
    async with serve(_handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/trade-api/ws/v2"


@pytest.mark.parametrize("compression", [False, True])
async def test_every_message_arrives_intact_and_in_order(server_url: str, compression: bool) -> None:
    got: list[tuple[bytes, int]] = []
    closes: list[tuple[int, str]] = []
    parsers: set[str] = set()
    closed = asyncio.Event()

    def sink(raw: bytes, ns: int, cid: int) -> None:
        got.append((raw, cid))
        assert ws.ws is not None
        parsers.add(type(ws.ws.protocol).__name__ + ("+deflate" if ws.ws.protocol.extensions else ""))

    def on_close(cid: int, reason: str) -> None:
        closes.append((cid, reason))
        closed.set()

    ws = WsConnection(server_url, "key", generate_private_key(), sink=sink, on_close=on_close,
                      compression=compression, stale_after=5.0)
    task = asyncio.create_task(ws.run())
    try:
        async with asyncio.timeout(5):
            await closed.wait()
    finally:
        ws.stop()
        await task
    assert [raw for raw, _ in got][: len(EXPECTED)] == EXPECTED
    assert {cid for _, cid in got[: len(EXPECTED)]} == {closes[0][0]}
    assert closes[0][1] == "closed by the server: code 1001 bye"
    assert parsers == {"FastClientProtocol+deflate" if compression else "FastClientProtocol"}
