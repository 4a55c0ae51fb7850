"""Streams, offsets and the publisher against a real nats-server."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from faust.types import TP
from nats import errors as nats_errors
from nats.aio.client import Client as NATS
from nats.protocol.parser import Parser

from ssmd.devstack import NatsServer
from ssmd.errors import ConfigError, ServerError
from ssmd.testing import wait_for
from ssmd.transport import envelope
from ssmd.transport.connection import close, connect
from ssmd.transport.fastsub import _fast_parser, header_block, subscribe_direct
from ssmd.transport.offsets import OffsetStore
from ssmd.transport.options import resolve
from ssmd.transport.publisher import Ack, Publisher, PublishError, parse_ack
from ssmd.transport.reader import PartitionReader
from ssmd.transport.streams import TopicLayout, TopicMismatchError, ensure_stream


async def test_stream_is_created_then_verified(nats_server: Any, nc: NATS) -> None:
    js = nc.jetstream()
    await ensure_stream(js, TopicLayout("orders", 4))
    await ensure_stream(js, TopicLayout("orders", 4))  # identical: accepted
    with pytest.raises(TopicMismatchError, match="partitions '4' on the server but the app configures '8'"):
        await ensure_stream(js, TopicLayout("orders", 8))
    with pytest.raises(TopicMismatchError, match="subjects"):
        await ensure_stream(js, TopicLayout("orders", 4, compacting=True))
    with pytest.raises(TopicMismatchError, match="max_age"):
        await ensure_stream(js, TopicLayout("orders", 4, max_age=60))
    with pytest.raises(TopicMismatchError, match="num_replicas"):
        await ensure_stream(js, TopicLayout("orders", 4, replicas=3))


async def test_offsets_resume_and_are_fenced_by_generation(nats_server: Any, nc: NATS) -> None:
    js = nc.jetstream()
    tp = TP("in", 0)
    old, new = OffsetStore(js, "app"), OffsetStore(js, "app")
    assert await old.read([tp]) == {tp: None}
    assert await old.commit({tp: 10}, generation=1)
    assert await new.read([tp]) == {tp: 10}
    assert await new.commit({tp: 12}, generation=2)
    # The old owner (generation 1) cannot move the offset under the new owner.
    assert not await old.commit({tp: 11}, generation=1)
    assert await OffsetStore(js, "app").read([tp]) == {tp: 12}
    # An owner of a newer generation overwrites whatever is there.
    assert await old.commit({tp: 20}, generation=3)
    assert await new.read([tp]) == {tp: 20}


async def test_publisher_dedupes_retries_and_reports_refusals(nats_server: Any, nc: NATS) -> None:
    js = nc.jetstream()
    await ensure_stream(js, TopicLayout("pub", 1))
    publisher = Publisher(nc, max_inflight=8, ack_timeout=1.0)
    await publisher.start()
    try:
        futs = [await publisher.publish("faust.pub.0", str(i).encode(), {"Nats-Msg-Id": f"id-{i}"})
                for i in range(50)]
        await publisher.flush()
        acks = [f.result() for f in futs]
        assert [a.seq for a in acks] == list(range(1, 51))
        # The same Msg-Id again (a retried publish) is dropped by the server.
        again = await (await publisher.publish("faust.pub.0", b"0", {"Nats-Msg-Id": "id-0"}))
        assert again.duplicate and again.seq == 1
        nowhere = await publisher.publish("no.stream.here", b"x")
        with pytest.raises(PublishError, match="no stream"):
            await publisher.flush()
        assert nowhere.done()
    finally:
        await publisher.close()
    info = await js.stream_info("FAUST_pub")
    assert info.state.messages == 50


async def test_core_publishes_ride_along_with_jetstream_publishes(nats_server: Any, nc: NATS) -> None:
    """Core messages reach core subscribers, in order, without a stream; a bad subject is refused at once."""
    js = nc.jetstream()
    await ensure_stream(js, TopicLayout("ride", 1))
    got: list[bytes] = []

    async def collect(msg: Any) -> None:
        got.append(msg.data)

    watcher = await connect(resolve([nats_server.url]), "watcher")
    await watcher.subscribe("live.>", cb=collect)
    await watcher.flush()
    publisher = Publisher(nc)
    await publisher.start()
    try:
        for i in range(300):
            await publisher.publish("faust.ride.0", b"durable")
            publisher.publish_core(f"live.t{i % 3}", str(i).encode())
        await publisher.flush()
        with pytest.raises(nats_errors.BadSubjectError):
            publisher.publish_core("bad subject", b"x")
        try:
            await wait_for(lambda: len(got) == 300, 10, "every core message")
        except AssertionError as e:  # core NATS is at-most-once: a dropped watcher misses messages
            msg = (f"{e}: {len(got)} of 300; the watcher reconnected {watcher.stats['reconnects']} times, "
                   f"last error {watcher.last_error!r}")
            raise AssertionError(msg) from e
        assert got == [str(i).encode() for i in range(300)]
        # Many at once (a normalized batch's public copies): in order; a bad one stops the rest.
        more = range(300, 700)
        publisher.publish_core_many([f"live.t{i % 3}" for i in more], [str(i).encode() for i in more])
        with pytest.raises(nats_errors.BadSubjectError):
            publisher.publish_core_many(["live.ok", "bad subject", "live.never"], [b"ok", b"x", b"never"])
        with pytest.raises(nats_errors.MaxPayloadError):
            publisher.publish_core_many(["live.big"], [b"x" * (nc.max_payload + 1)])
        await wait_for(lambda: len(got) == 701, 10, "every valid core message")
        await asyncio.sleep(0.1)
        assert got == [str(i).encode() for i in range(700)] + [b"ok"]
    finally:
        await publisher.close()
        await watcher.close()
    assert (await js.stream_info("FAUST_ride")).state.messages == 300


def test_options_from_urls_and_env() -> None:
    opts = resolve(["nats://a:4222?creds=/x.creds&heartbeat=0.5", "nats://u:p@b:4223"],
                   env={"SSMD_NATS_SESSION_TIMEOUT": "3", "SSMD_NATS_TOKEN": "t"})
    assert opts.servers == ("nats://a:4222", "nats://u:p@b:4223")
    assert (opts.heartbeat, opts.session_timeout, opts.creds, opts.token) == (0.5, 3.0, "/x.creds", "t")
    kw = opts.connect_kwargs()
    assert kw["user_credentials"] == "/x.creds" and kw["token"] == "t" and kw["max_reconnect_attempts"] == -1
    assert resolve(["nats://a:1"], env={"SSMD_NATS_TLS": "1"}).ssl_context() is not None
    with pytest.raises(ConfigError, match="must look like nats://"):
        resolve(["http://a:1"], env={})
    with pytest.raises(ConfigError, match="must be a number"):
        resolve(["nats://a:1?heartbeat=soon"], env={})
    with pytest.raises(ConfigError, match="session_timeout"):
        resolve(["nats://a:1?heartbeat=5&session_timeout=6"], env={})


async def test_mismatched_stream_stops_the_worker(nats_server: Any, nc: NATS) -> None:
    from transport_helpers import make_app, wait_for

    await ensure_stream(nc.jetstream(), TopicLayout("src", 3))
    app = make_app("mismatch", nats_server.url)
    src = app.topic("src", value_type=int, partitions=2)

    @app.agent(src)
    async def agent(stream: Any) -> None:
        async for _ in stream:
            pass

    await app.start()
    try:
        await wait_for(lambda: app._crash_reason is not None, 10, "the worker to stop")
        assert isinstance(app._crash_reason, ConfigError)
        assert "partitions '3' on the server but the app configures '2'" in str(app._crash_reason)
    finally:
        await app.stop()
    await asyncio.sleep(0)


async def test_connects_through_any_listed_server_and_fails_clearly(nats_server: Any) -> None:
    nc = await connect(resolve(["nats://127.0.0.1:1", nats_server.url], env={}), "test")
    assert nc.is_connected
    await nc.close()
    with pytest.raises(ServerError, match=re.escape("cannot connect to NATS at nats://127.0.0.1:1 within 0.5 s")):
        await connect(resolve(["nats://127.0.0.1:1?connect_timeout=0.5"], env={}), "test")


async def test_closing_with_the_server_gone_is_no_error(tmp_path: Any) -> None:
    """A worker stopped while NATS is down: closing its connection must not raise (it did, from nats-py)."""
    server = NatsServer(data_dir=tmp_path / "nats").start()
    nc = await connect(resolve([server.url], env={}), "test")
    server.stop()
    await wait_for(lambda: nc.is_reconnecting, within=10, what="the client noticing the server is gone")
    await nc.publish("anything", b"buffered while disconnected")
    await close(nc, "test")
    assert nc.is_closed


async def test_reader_reports_messages_the_stream_removed_before_it_read_them(nats_server: Any, nc: NATS) -> None:
    js = nc.jetstream()
    layout = TopicLayout("holes", 2)
    await ensure_stream(js, layout)
    seqs = [(await js.publish(layout.publish_subject(n % 2, None), b"m")).seq for n in range(8)]  # 1..8
    reader = PartitionReader(nc, js, layout, 0, batch=16, on_data=lambda: None)
    await reader.seek(3)  # partition 0 committed up to seq 1: 3 is its next
    await js.purge_stream(layout.stream, seq=6)  # keeps 6.. (removes 3 and 5 of partition 0, unread)
    await reader.pump()
    assert reader.holes == [(3, 6)]
    await wait_for(lambda: [r.seq for r in reader.buffer] == [7], within=5, what="the message after the hole")
    reader.check_first_seq(6)  # the same hole, seen again: reported once
    await js.purge_stream(layout.stream, seq=9)  # 7 was read; 8 (partition 1) is not this reader's concern
    reader.check_first_seq((await js.stream_info(layout.stream)).state.first_seq)
    assert reader.holes == [(3, 6), (8, 9)]  # conservative: the partition cannot tell whose message 8 was
    beginning = PartitionReader(nc, js, layout, 1, batch=16, on_data=lambda: None)
    beginning.check_first_seq(9)  # reading from the start (no position): nothing can be missed
    assert beginning.holes == [] and seqs == list(range(1, 9))
    changelog = PartitionReader(nc, js, TopicLayout("holes-changelog", 2, compacting=True), 0, batch=16,
                                on_data=lambda: None)  # fmt: skip
    await changelog.seek(3)
    changelog.check_first_seq(9)  # compaction drops overwritten values by design: no hole
    assert changelog.holes == []
    await reader.close()


def test_pub_ack_parsing() -> None:
    assert parse_ack(b'{"stream":"FAUST_x","seq":42}') == Ack(42, False)
    assert parse_ack(b'{"stream":"FAUST_x","seq":7,"duplicate": true}') == Ack(7, True)
    assert parse_ack(b'{"error":{"code":400,"err_code":10060,"description":"expected stream does not match"}}') is None


def test_header_block_round_trip() -> None:
    block = envelope.header_block(b"k\x00", None, 1.5, [("trace", b"\xff")], "app:in/0/7:0", "FAUST_out")
    assert block.startswith(b"NATS/1.0\r\n") and block.endswith(b"\r\n\r\n")
    assert envelope.decode(block, b"", 2_000_000_000) == (True, b"k\x00", None, 1.5, [("trace", b"\xff")])
    # no headers at all: keyless, the payload is the value, the store time is the timestamp
    assert envelope.decode(None, b"v", 2_000_000_000) == (False, None, b"v", 2.0, [])
    assert envelope.status_of(b"NATS/1.0 408 Request Timeout\r\n\r\n") == ("408", "Request Timeout")
    assert envelope.status_of(block) == ("", "")
    with pytest.raises(ValueError, match="header name"):
        envelope.header_block(None, b"v", None, [("bad name", b"")], "id")


async def test_direct_subscription_gets_raw_messages(nats_server: Any, nc: NATS) -> None:
    got: list[tuple[bytes, bytes, bytes | None, bytes]] = []
    await subscribe_direct(nc, "raw.>", lambda *m: got.append(m))
    normal: list[bytes] = []

    async def on_msg(msg: Any) -> None:
        normal.append(msg.data)

    await nc.subscribe("plain", cb=on_msg)
    big = b"x" * 200_000  # spans several socket reads: the parser waits for the whole payload
    await nc.publish("raw.a", b"one", reply="r.1", headers={"Faust-Ts": "1.5"})
    await nc.publish("plain", b"p")
    await nc.publish("raw.b", big)
    await nc.flush()
    await wait_for(lambda: len(got) == 2 and normal == [b"p"])
    assert got[0] == (b"raw.a", b"r.1", b"NATS/1.0\r\nFaust-Ts: 1.5\r\n\r\n", b"one")
    assert got[1] == (b"raw.b", b"", None, big)
    # the slow path (a Msg from nats-py) gives the handler the same fields
    assert header_block({"Status": "503"}) == b"NATS/1.0 503\r\n\r\n"
    assert header_block({"Faust-Ts": "1.5"}) == b"NATS/1.0\r\nFaust-Ts: 1.5\r\n\r\n"


async def test_fast_parser_handles_any_split_and_other_operations() -> None:
    class FakeClient:
        def __init__(self) -> None:
            self._subs = {1: object(), 2: object()}
            self.stats = {"in_msgs": 0, "in_bytes": 0}
            self.other: list[tuple[bytes, bytes]] = []
            self.pings = 0

        async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes, hdr: bytes | None) -> None:
            # nats-py's own path: counts, then a direct subscription's queue calls the handler
            self.stats["in_msgs"] += 1
            self.stats["in_bytes"] += len(data)
            if sid in self._ps.direct:
                self._ps.direct[sid](subject, reply, hdr, data)
            else:
                self.other.append((subject, data))

        async def _process_ping(self) -> None:
            self.pings += 1

    wire = (b"MSG a 1 3\r\nabc\r\nPING\r\nHMSG b 1 r.1 12 14\r\nNATS/1.0\r\n\r\nxy\r\n"
            b"MSG c 2 1\r\nz\r\n+OK\r\nMSG a 1 0\r\n\r\n")
    expected = [(b"a", b"", None, b"abc"), (b"b", b"r.1", b"NATS/1.0\r\n\r\n", b"xy"), (b"a", b"", None, b"")]
    for step in (1, 2, 5, 7, len(wire)):
        nc: Any = FakeClient()
        got: list[tuple[bytes, bytes, bytes | None, bytes]] = []
        nc._ps = Parser(nc)
        fast: Any = _fast_parser(nc)
        fast.direct[1] = lambda *m, got=got: got.append(m)
        for i in range(0, len(wire), step):
            await fast.parse(wire[i:i + step])
        assert (got, nc.other, nc.pings, bytes(fast.buf)) == (expected, [(b"c", b"z")], 1, b""), step
        assert nc.stats == {"in_msgs": 4, "in_bytes": 6}
