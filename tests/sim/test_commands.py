"""Checklist 4-10: subscribe, unsubscribe, update_subscription, list_subscriptions and their errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssmd.sim.config import FaultConfig
from ssmd.sim.faults import Faults
from ssmd.sim.groundtruth import GroundTruth
from ssmd.sim.model import MarketModel
from ssmd.sim.session import Session
from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import SimClient as Client
from ssmd.sim.testing import test_config as make_config


def some(sim: Simulator, n: int) -> list[str]:
    return list(sim.model.markets)[:n]


@pytest.mark.parametrize(("cmd", "params", "code", "message"), [
    ("subscribe", None, 2, "Params required"),
    ("subscribe", {}, 3, "Channels required"),
    ("subscribe", {"channels": []}, 3, "Channels required"),
    ("subscribe", {"channels": ["ticker_v2"]}, 8, "Unknown channel name"),
    ("subscribe", {"channels": ["ticker", "bogus"]}, 8, "Unknown channel name"),
    ("subscribe", {"channels": ["orderbook_delta"]}, 14, "Market Ticker required"),
    ("subscribe", {"channels": ["ticker"], "market_ticker": "A", "market_tickers": ["B"]}, 11, "Invalid parameter"),
    ("subscribe", {"channels": ["ticker"], "market_tickers": "A"}, 11, "Invalid parameter"),
    ("subscribe", {"channels": ["ticker"], "use_yes_price": "yes"}, 11, "Invalid parameter"),
    ("subscribe", {"channels": "ticker"}, 11, "Invalid parameter"),
    ("subscribe", {"channels": ["communications"], "shard_factor": 0}, 19, "shard_factor must be > 0"),
    ("subscribe", {"channels": ["communications"], "shard_key": 1}, 20,
     "shard_factor is required when shard_key is set"),
    ("subscribe", {"channels": ["communications"], "shard_factor": 2, "shard_key": 2}, 21,
     "shard_key must be >= 0 and < shard_factor"),
    ("subscribe", {"channels": ["communications"], "shard_factor": 101}, 22, "shard_factor must be <= 100"),
    ("subscribe", {"channels": ["cfbenchmarks_value"]}, 24, "Index IDs required"),
    ("subscribe", {"channels": ["pyth_value"]}, 28, "Underlying tickers required"),
    ("unsubscribe", {}, 4, "Subscription IDs required"),
    ("unsubscribe", {"sids": [99]}, 7, "Unknown subscription ID"),
    ("unsubscribe", {"sids": ["1"]}, 11, "Invalid parameter"),
    ("update_subscription", {"sids": [1], "market_tickers": ["A"]}, 15, "Action required"),
    ("update_subscription", {"sids": [1, 2], "action": "add_markets"}, 12,
     "Exactly one subscription ID is required"),
    ("update_subscription", {"sid": 1, "sids": [1], "action": "add_markets"}, 12,
     "Exactly one subscription ID is required"),
    ("update_subscription", {"action": "add_markets"}, 12, "Exactly one subscription ID is required"),
    ("update_subscription", {"sid": 42, "action": "add_markets", "market_tickers": ["A"]}, 7,
     "Unknown subscription ID"),
])
async def test_command_errors_have_kalshis_code_and_message(
    client: Client, cmd: str, params: dict[str, Any] | None, code: int, message: str
) -> None:
    cmd_id = await client.send(cmd, params)
    assert await client.recv() == {"id": cmd_id, "type": "error", "msg": {"code": code, "msg": message}}


async def test_action_outside_params_is_error_15(client: Client, sim: Simulator) -> None:
    await client.subscribe(["orderbook_delta"], market_tickers=some(sim, 1))
    cmd_id = await client.send("update_subscription", {"sids": [1], "market_tickers": some(sim, 2)},
                               action="add_markets")
    assert (await client.recv()) == {"id": cmd_id, "type": "error", "msg": {"code": 15, "msg": "Action required"}}


async def test_unsupported_actions_are_error_13(client: Client, sim: Simulator) -> None:
    await client.subscribe(["trade", "market_lifecycle_v2"], market_tickers=some(sim, 1))
    for params in ({"sid": 1, "action": "get_snapshot", "market_tickers": some(sim, 1)},
                   {"sid": 2, "action": "add_markets", "market_tickers": some(sim, 1)},
                   {"sid": 1, "action": "explode", "market_tickers": some(sim, 1)}):
        cmd_id = await client.send("update_subscription", params)
        assert await client.recv() == {"id": cmd_id, "type": "error", "msg": {"code": 13, "msg": "Unsupported action"}}


async def test_subscribe_answers_one_subscribed_per_channel_then_snapshots(client: Client, sim: Simulator) -> None:
    markets = some(sim, 3)
    frames = await client.subscribe(["orderbook_delta", "trade", "ticker"], market_tickers=markets)
    subscribed = [f for f in frames if f["type"] == "subscribed"]
    assert subscribed == [{"id": 1, "type": "subscribed", "msg": {"channel": c, "sid": i}}
                          for i, c in enumerate(["orderbook_delta", "trade", "ticker"], 1)]
    snapshots = [f for f in frames if f["type"] == "orderbook_snapshot"]
    assert [(f["sid"], f["seq"], f["msg"]["market_ticker"]) for f in snapshots] == \
        [(1, i, t) for i, t in enumerate(markets, 1)]
    assert frames[0]["type"] == "subscribed" and frames[1]["type"] == "orderbook_snapshot"
    cmd_id = await client.send("list_subscriptions")
    assert await client.recv() == {"id": cmd_id, "type": "ok", "msg": [
        {"channel": "orderbook_delta", "sid": 1}, {"channel": "trade", "sid": 2}, {"channel": "ticker", "sid": 3}]}


async def test_repeat_subscribe_merges_into_the_sid_with_ok_and_new_snapshots_only(
    client: Client, sim: Simulator
) -> None:
    a, b, c = some(sim, 3)
    await client.subscribe(["orderbook_delta"], market_tickers=[a, b])
    frames = await client.subscribe(["orderbook_delta"], market_tickers=[b, c])
    assert frames[0] == {"id": 2, "sid": 1, "seq": 3, "type": "ok", "msg": {"market_tickers": [a, b, c]}}
    assert [(f["type"], f["seq"], f["msg"]["market_ticker"]) for f in frames[1:]] == [("orderbook_snapshot", 4, c)]


async def test_unknown_ticker_gets_an_empty_snapshot(client: Client) -> None:
    frames = await client.subscribe(["orderbook_delta"], market_ticker="KXOLD-20JAN01-T1")
    assert frames[1] == {"type": "orderbook_snapshot", "sid": 1, "seq": 1,
                         "msg": {"market_ticker": "KXOLD-20JAN01-T1", "market_id": ""}}


async def test_update_subscription_add_delete_and_get_snapshot(client: Client, sim: Simulator) -> None:
    a, b, c = some(sim, 3)
    await client.subscribe(["orderbook_delta"], market_tickers=[a])
    cmd_id = await client.send("update_subscription", {"sids": [1], "market_tickers": [b, c], "action": "add_markets"})
    frames = await client.drain()
    assert frames[0] == {"id": cmd_id, "sid": 1, "seq": 2, "type": "ok", "msg": {"market_tickers": [a, b, c]}}
    assert [(f["seq"], f["msg"]["market_ticker"]) for f in frames[1:]] == [(3, b), (4, c)]
    cmd_id = await client.send("update_subscription", {"sid": 1, "market_tickers": [a], "action": "delete_markets",
                                                       "skip_ticker_ack": True})
    assert await client.recv() == {"id": cmd_id, "sid": 1, "seq": 5, "type": "ok", "msg": {}}
    cmd_id = await client.send("update_subscription", {"sids": [1], "market_tickers": [c], "action": "get_snapshot"})
    snap = await client.recv()
    assert (snap["id"], snap["type"], snap["sid"], snap["seq"], snap["msg"]["market_ticker"]) == \
        (cmd_id, "orderbook_snapshot", 1, 6, c)
    await sim.step(400)
    tickers_seen = {f["msg"]["market_ticker"] for f in await client.drain() if f["type"] == "orderbook_delta"}
    assert tickers_seen and tickers_seen <= {b, c}


async def test_unsubscribe_acks_with_seq_and_stops_the_stream(client: Client, sim: Simulator) -> None:
    await client.subscribe(["orderbook_delta"], market_tickers=some(sim, 2))
    await client.subscribe(["ticker"])
    cmd_id = await client.send("unsubscribe", {"sids": [1, 2]})
    assert await client.recv_n(2) == [{"id": cmd_id, "sid": 1, "seq": 3, "type": "unsubscribed"},
                                      {"id": cmd_id, "sid": 2, "type": "unsubscribed"}]
    await sim.step(200)
    assert await client.drain() == []
    frames = await client.subscribe(["orderbook_delta"], market_tickers=some(sim, 1))
    assert frames[0]["msg"] == {"channel": "orderbook_delta", "sid": 3}
    assert frames[1]["seq"] == 1  # a new sid's seq starts again at 1


async def test_market_limit_is_error_26() -> None:
    async with Simulator(make_config(max_markets_per_sid=2)) as sim:
        c = await Client.connect(sim)
        cmd_id = await c.send("subscribe", {"channels": ["trade"], "market_tickers": some(sim, 3)})
        assert await c.recv() == {"id": cmd_id, "type": "error",
                                  "msg": {"code": 26, "msg": "Subscription market limit exceeded"}}
        await c.close()


async def test_optional_legacy_error_6_on_repeat_subscribe() -> None:
    async with Simulator(make_config(repeat_subscribe_error=True)) as sim:
        c = await Client.connect(sim)
        await c.subscribe(["trade"])
        cmd_id = await c.send("subscribe", {"channels": ["trade"]})
        assert await c.recv() == {"id": cmd_id, "type": "error", "msg": {"code": 6, "msg": "Already subscribed"}}
        await c.close()


def test_no_command_crashes_the_session() -> None:
    model = MarketModel(markets=5, seed=1)
    tickers = list(model.markets)
    scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "x", *tickers])
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6)
    params = st.dictionaries(
        st.sampled_from(["channels", "market_ticker", "market_tickers", "sid", "sids", "action", "use_yes_price",
                         "skip_ticker_ack", "send_initial_snapshot", "shard_factor", "shard_key", "market_ids"]),
        values | st.lists(st.sampled_from(["ticker", "trade", "orderbook_delta", "bogus"]), max_size=3)
        | st.sampled_from(["add_markets", "delete_markets", "get_snapshot"]), max_size=5)
    commands = st.fixed_dictionaries({"cmd": st.sampled_from(
        ["subscribe", "unsubscribe", "update_subscription", "list_subscriptions", "nope"]) | values},
        optional={"id": values, "params": params | values})

    @settings(max_examples=300, deadline=None)
    @given(st.lists(commands, min_size=1, max_size=6))
    def run(batch: list[dict[str, object]]) -> None:
        session = Session(1, model, Faults(FaultConfig(), 0), GroundTruth())
        for command in batch:
            session.handle(json.dumps(command))
            assert session.out, "every command gets an answer"
            for _, text in session.out:
                frame = json.loads(text)
                assert frame["type"] in {"subscribed", "ok", "error", "unsubscribed", "orderbook_snapshot", "ticker"}
                if frame["type"] == "error":
                    assert frame["msg"]["msg"]
            session.out.clear()

    run()
