"""Checklist 1-3: the signed upgrade (401 otherwise), heartbeat pings, JSON text frames only."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ssmd.kalshi.auth import auth_headers, generate_private_key
from ssmd.kalshi.protocol import HEADER_SIGNATURE
from ssmd.sim.config import FaultConfig
from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import SimClient as Client
from ssmd.sim.testing import test_config as make_config


async def refused_status(url: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, additional_headers=headers):
            pass
    response = info.value.response
    return response.status_code, json.loads(response.body or b"{}")


async def test_valid_signature_upgrades_even_with_a_query_string_and_other_host(sim: Simulator) -> None:
    assert sim.client_key is not None
    url = sim.ws_url.replace("127.0.0.1", "localhost") + "?x=1"
    async with connect(url, additional_headers=sim.client_key.headers()) as ws:
        await ws.send(json.dumps({"id": 1, "cmd": "list_subscriptions"}))
        assert json.loads(await ws.recv()) == {"id": 1, "type": "ok", "msg": []}


async def test_bad_stale_unknown_and_missing_signatures_get_401(sim: Simulator) -> None:
    assert sim.client_key is not None
    key = sim.client_key
    path = "/trade-api/ws/v2"
    stale = auth_headers(key.key_id, key.private_key, "GET", path, now_ms=time.time_ns() // 10**6 - 60_000)
    status, body = await refused_status(sim.ws_url, stale)
    assert status == 401 and body["error"]["code"] == "header_timestamp_expired"  # type: ignore[index]
    forged = auth_headers(key.key_id, generate_private_key(), "GET", path)
    status, body = await refused_status(sim.ws_url, forged)
    assert status == 401 and body["error"]["details"] == "INCORRECT_API_KEY_SIGNATURE"  # type: ignore[index]
    wrong_path = auth_headers(key.key_id, key.private_key, "GET", "/trade-api/v2/ws")
    assert (await refused_status(sim.ws_url, wrong_path))[0] == 401
    unknown = auth_headers("00000000-0000-0000-0000-000000000000", key.private_key, "GET", path)
    status, body = await refused_status(sim.ws_url, unknown)
    assert status == 401 and body["error"]["details"] == "NOT_FOUND"  # type: ignore[index]
    assert (await refused_status(sim.ws_url, {}))[0] == 401
    tampered = {**key.headers(), HEADER_SIGNATURE: key.headers()[HEADER_SIGNATURE][:-8] + "AAAAAAA="}
    assert (await refused_status(sim.ws_url, tampered))[0] == 401


async def test_registered_public_key_is_the_one_checked() -> None:
    private = generate_private_key()
    async with Simulator(make_config(keys={"my-key": private.public_key()})) as s:
        assert s.client_key is None
        async with connect(s.ws_url, additional_headers=auth_headers("my-key", private, "GET", "/trade-api/ws/v2")):
            pass
        other = generate_private_key()
        assert (await refused_status(s.ws_url, auth_headers("my-key", other, "GET", "/trade-api/ws/v2")))[0] == 401


async def test_heartbeat_pings_carry_heartbeat_and_client_pings_get_pongs(client_for: Any) -> None:
    async with Simulator(make_config(heartbeat_s=0.1)) as s:
        c = await client_for(s, ping_interval=None)
        pings: list[bytes] = []
        original = c.ws.protocol.recv_frame

        def spy(frame):  # type: ignore[no-untyped-def]
            if frame.opcode.name == "PING":
                pings.append(bytes(frame.data))
            return original(frame)

        c.ws.protocol.recv_frame = spy  # type: ignore[method-assign]
        await asyncio.sleep(0.6)
        assert len(pings) >= 2 and set(pings) == {b"heartbeat"}
        latency = await asyncio.wait_for(await c.ws.ping(b"client"), 2)
        assert latency >= 0


async def test_unparseable_binary_and_unknown_commands_get_errors_1_and_5(client: Client) -> None:
    await client.ws.send("{not json")
    assert await client.recv() == {"type": "error", "msg": {"code": 1, "msg": "Unable to process message"}}
    await client.ws.send(b'{"id": 2, "cmd": "list_subscriptions"}')
    assert (await client.recv())["msg"]["code"] == 1
    await client.ws.send(json.dumps([1, 2]))
    assert (await client.recv())["msg"]["code"] == 1
    cmd_id = await client.send("launch_rockets", {})
    assert await client.recv() == {"id": cmd_id, "type": "error", "msg": {"code": 5, "msg": "Unknown command"}}


async def test_clients_that_stop_ponging_are_closed_when_configured(client_for: Any) -> None:
    async with Simulator(make_config(heartbeat_s=0.05, pong_timeout_s=0.1)) as s:
        c = await client_for(s, ping_interval=None)
        original = c.ws.protocol.recv_frame

        def swallow_pings(frame):  # type: ignore[no-untyped-def]
            if frame.opcode.name != "PING":  # a client that never answers heartbeats
                original(frame)

        c.ws.protocol.recv_frame = swallow_pings  # type: ignore[method-assign]
        with pytest.raises(ConnectionClosed) as info:
            await c.recv(within=3)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1011


async def test_optional_public_mode_accepts_unsigned_clients_on_public_channels() -> None:
    async with Simulator(make_config(allow_unauthenticated=True)) as s:
        async with connect(s.ws_url) as ws:
            c = Client(ws)
            assert (await c.subscribe(["ticker", "trade"]))[0]["type"] == "subscribed"
            cmd_id = await c.send("subscribe", {"channels": ["orderbook_delta"], "market_ticker": "X"})
            auth_required = {"code": 9, "msg": "Authentication required"}
            assert await c.recv() == {"id": cmd_id, "type": "error", "msg": auth_required}
        assert s.client_key is not None
        forged = auth_headers(s.client_key.key_id, generate_private_key(), "GET", "/trade-api/ws/v2")
        assert (await refused_status(s.ws_url, forged))[0] == 401


async def test_optional_empty_pongs(client_for: Any) -> None:
    async with Simulator(make_config(faults=FaultConfig(empty_pongs=True))) as s:
        c = await client_for(s, ping_interval=None)
        pongs: list[bytes] = []
        original = c.ws.protocol.recv_frame

        def spy(frame):  # type: ignore[no-untyped-def]
            if frame.opcode.name == "PONG":
                pongs.append(bytes(frame.data))
            return original(frame)

        c.ws.protocol.recv_frame = spy  # type: ignore[method-assign]
        waiter = await c.ws.ping(b"mine")
        await c.send("list_subscriptions")
        await c.recv()
        assert pongs == [b""] and not waiter.done()
