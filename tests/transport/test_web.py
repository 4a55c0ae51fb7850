"""Faust's web views report the transport's assignment, offsets and lag."""

from __future__ import annotations

import socket
from typing import Any

import httpx
from transport_helpers import make_app, running, wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_stats_page_reports_end_and_committed_offsets(nats_server: Any) -> None:
    port = _free_port()
    app = make_app("webapp", nats_server.url, web_enabled=True, web_port=port, web_bind="127.0.0.1",
                   web_host="127.0.0.1", debug=True)
    topic = app.topic("events", key_type=str, value_type=int, partitions=2)
    done: list[int] = []

    @app.agent(topic)
    async def consume(stream: Any) -> None:
        async for v in stream:
            done.append(v)

    async with running(app):
        for i in range(20):
            await topic.send(key=f"k{i}", value=i)
        await wait_for(lambda: len(done) == 20, what="20 events")
        tps = [app.consumer._new_topicpartition("events", p) for p in range(2)]
        hw = await app.consumer.highwaters(*tps)
        await wait_for(lambda: all(app.monitor.tp_committed_offsets.get(tp) == hw[tp] for tp in tps),
                       what="commits")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            stats = (await http.get("/")).json()["Sensor0"]
            assignment = (await http.get("/assignment/")).json()
        end = stats["topic_end_offsets"]["events"]
        committed = stats["topic_committed_offsets"]["events"]
        assert {int(p): v for p, v in end.items()} == {tp.partition: hw[tp] for tp in tps}
        assert end == committed  # lag 0
        assert stats["messages_received_by_topic"]["events"] == 20
        assert sorted(assignment["actives"]["events"]) == [0, 1]
