"""Issue 5: kill -9 the worker mid-stream, restart it: nothing acknowledged is lost, the outage is a gap.

The simulator runs in the test process at a steady rate (its event loop keeps running while the test
waits on the worker subprocesses); ``ssmd worker`` runs as a subprocess on a real nats-server. Worker A
is SIGKILLed while capturing, worker B is started after a short outage and stopped with SIGTERM.

What must hold:

- raw: every captured frame is the frame the simulator sent with that number on that connection, and
  none is doubled. B (stopped cleanly, after the simulator went quiet) has all of its frames, 1..N. A
  lost only, per partition, the tail it had read but JetStream had not acknowledged (or it had not yet
  read) when it died;
- normalized: every sequenced data frame of the raw stream (snapshot, delta, trade) has its record,
  keyed by (connection id, sid, seq), none missing, none extra; the restarted worker resumes from the
  committed offset and its books from the table changelog;
- gaps: every ticker A carried has a disconnect gap from its last frame A captured (so it covers every
  lost frame of that ticker) to its first snapshot on B's connection, and the books at the end equal
  the simulator's ground truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import nats
from nats.aio.msg import Msg
from pipeline_helpers import read_settled, running, settings_for, truth_book, wait_for, yes_book

from ssmd import codec
from ssmd import records as r
from ssmd.app import topic_name
from ssmd.capture import markers
from ssmd.connector import ticker_of
from ssmd.devstack import NatsServer
from ssmd.normalize.normalizer import Normalizer, Output
from ssmd.partitioning import partition_for
from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import test_config
from ssmd.transport import naming

ENV = "kalshi-dev"
MARKETS = 6
DATA = ("orderbook_snapshot", "orderbook_delta", "trade")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _worker_env(sim: Simulator, nats_url: str, tmp: Path) -> dict[str, str]:
    assert sim.client_key is not None and sim.client_key.path is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSMD_")}
    env.update({
        "SSMD_ENV": ENV,
        "SSMD_NATS_URL": nats_url,
        "SSMD_KALSHI_WS_URL": sim.ws_url,
        "SSMD_KALSHI_REST_URL": sim.rest_url,
        "SSMD_KALSHI_KEY_ID": sim.client_key.key_id,
        "SSMD_KALSHI_PRIVATE_KEY": str(sim.client_key.path),
        "SSMD_PARTITIONS": "2",
        "SSMD_DATA_DIR": str(tmp / "worker"),
        "SSMD_WEB_PORT": str(_free_port()),
        "SSMD_NATS_SESSION_TIMEOUT": "2",
        "SSMD_NATS_HEARTBEAT": "0.5",
    })  # fmt: skip
    return env


class _Workers:
    """``ssmd worker`` subprocesses; any still running when the test ends (say, it failed) are killed."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, env: dict[str, str], log: Path,
                    agents: str = "connector,normalizer") -> asyncio.subprocess.Process:  # fmt: skip
        with log.open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ssmd.cli", "worker", "--agents", agents,
                env=env, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        self.procs.append(proc)
        return proc


@contextlib.asynccontextmanager
async def _workers() -> AsyncIterator[_Workers]:
    workers = _Workers()
    try:
        yield workers
    finally:
        for proc in workers.procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def _snapshots_on(sim: Simulator, conn: int) -> int:
    return sum(f.text.startswith('{"type":"orderbook_snapshot"') for f in sim.ground_truth.sent.get(conn, []))


async def _capturing(sim: Simulator, proc: asyncio.subprocess.Process, log: Path, known: set[int]) -> int:
    """Wait until the worker holds a new connection with every market subscribed; return the sim's conn id."""

    def subscribed() -> bool:
        if proc.returncode is not None:
            msg = f"worker exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            raise AssertionError(msg)
        return any(_snapshots_on(sim, c) >= MARKETS for c in set(sim.ground_truth.sent) - known)

    await wait_for(subscribed, 40, "the worker's subscriptions")
    (conn,) = [c for c in set(sim.ground_truth.sent) - known if _snapshots_on(sim, c) >= MARKETS]
    return conn


async def _caught_up(nats_url: str, frames: int) -> None:
    """Wait until the raw stream holds ``frames`` frames of the latest connection, all normalized."""
    for _ in range(100):
        raw = await read_settled(nats_url, topic_name(ENV, "raw"), quiet=0.1)
        normalized = await read_settled(nats_url, topic_name(ENV, "normalized"), quiet=0.1)
        mine = [f for f in raw if isinstance(f, r.RawFrame) and f.connection_id == raw[-1].connection_id]
        done = {(x.connection_id, x.sid, x.seq) for x in normalized if isinstance(x, r.OrderBookUpdate | r.Trade)}
        if len(mine) >= frames and all((f.connection_id, f.sid, f.seq) in done for f in mine if _kind(f)):
            return
        await asyncio.sleep(0.2)
    msg = "the worker did not catch up"
    raise AssertionError(msg)


def _kind(frame: r.RawFrame) -> str:
    return frame.channel if frame.channel in DATA else ""


async def test_kill_9_and_restart_lose_nothing_acked_and_gap_the_outage(nats_server: NatsServer,
                                                                        tmp_path: Path) -> None:  # fmt: skip
    log = tmp_path / "worker.log"
    config = test_config(markets=MARKETS, seed=21, rate=400, lifecycle_prob=0.0)  # a fixed set of markets
    async with Simulator(config, key_path=tmp_path / "key.pem") as sim, _workers() as workers:
        env = _worker_env(sim, nats_server.url, tmp_path)
        a = await workers.start(env, log)
        conn_a = await _capturing(sim, a, log, set())
        await asyncio.sleep(1.5)
        a.send_signal(signal.SIGKILL)
        assert await a.wait() == -signal.SIGKILL
        await asyncio.sleep(0.5)  # the outage: the exchange moves on
        b = await workers.start(env, log)
        conn_b = await _capturing(sim, b, log, {conn_a})
        await asyncio.sleep(1.5)
        sim.rate = 0  # quiet: B must capture everything it was sent
        sent_b = len(sim.ground_truth.sent[conn_b])
        await _caught_up(nats_server.url, sent_b)
        b.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(b.wait(), 30) == 0, log.read_text()[-3000:]
        raw = await read_settled(nats_server.url, topic_name(ENV, "raw"), quiet=0.3)
        normalized = await read_settled(nats_server.url, topic_name(ENV, "normalized"), quiet=0.3)
        truth = {t: truth_book(sim, t) for t in sim.model.markets}
        sent = {c: sim.ground_truth.frames(c) for c in (conn_a, conn_b)}
    assert set(sim.ground_truth.sent) == {conn_a, conn_b}  # one connection per worker run

    # Raw: each captured frame is the exchange's frame of its number on its connection, none doubled.
    frames = [f for f in raw if isinstance(f, r.RawFrame) and not f.channel.startswith("ssmd.")]
    by_conn: dict[int | None, list[r.RawFrame]] = defaultdict(list)
    for f in frames:
        by_conn[f.connection_id].append(f)
    assert len(by_conn) == 2
    captured: dict[int, list[r.RawFrame]] = {}
    for fs in by_conn.values():
        fs.sort(key=lambda f: f.frame_no or 0)
        numbers = [f.frame_no or 0 for f in fs]
        assert len(set(numbers)) == len(numbers) and numbers[0] == 1, "a frame doubled in the raw stream"
        (conn,) = [c for c in sent if all(f.data.decode() == sent[c][(f.frame_no or 0) - 1] for f in fs)]
        captured[conn] = fs
    # B, stopped cleanly after the exchange went quiet: all of its frames, 1..N.
    assert [f.frame_no for f in captured[conn_b]] == list(range(1, len(sent[conn_b]) + 1))
    assert len(sent[conn_b]) == sent_b
    # A, killed: per partition (one batch in flight at a time), what is missing is only the tail that was
    # in flight or not yet read when it died.
    got = {f.frame_no for f in captured[conn_a]}
    lost = [(i, t) for i, t in enumerate(sent[conn_a], start=1) if i not in got]
    last_captured: dict[int, int] = defaultdict(int)
    for f in captured[conn_a]:
        last_captured[partition_for(f.ticker, 2) if f.ticker else 0] = f.frame_no or 0
    for i, text in lost:
        ticker = ticker_of(text.encode())
        assert i > last_captured[partition_for(ticker, 2) if ticker else 0], f"frame {i} of A lost mid-stream"
    cid_b = captured[conn_b][0].connection_id

    # Normalized: one record per sequenced data frame, none missing, none invented.
    data = Counter((f.connection_id, f.sid, f.seq) for f in frames if _kind(f))
    outputs = [x for x in normalized if isinstance(x, r.OrderBookUpdate | r.Trade)]
    keys = Counter((x.connection_id, x.sid, x.seq) for x in outputs)
    assert set(keys) == set(data)
    assert max(keys.values()) == 1, "a frame normalized twice made it past deduplication"

    # Gaps: every ticker of A has a disconnect gap from its last captured frame to B's first snapshot.
    gaps = [x for x in normalized if isinstance(x, r.Gap)]
    tickers_a = {f.ticker for f in captured[conn_a] if _kind(f)}
    assert tickers_a == set(truth)
    assert {ticker_of(t.encode()) for _, t in lost} - {None} <= tickers_a
    for ticker in tickers_a:
        # Every lost frame of the ticker came after its last captured one (checked above): covered.
        last_a = max(f.received_ns for f in captured[conn_a] if f.ticker == ticker and _kind(f))
        first_b = min(f.received_ns for f in captured[conn_b] if f.ticker == ticker and _kind(f))
        mine = [g for g in gaps if g.ticker == ticker and g.start_ns < first_b]
        assert [(g.kind, g.start_ns, g.end_ns) for g in mine] == [
            ("disconnect", last_a, None),
            ("disconnect", last_a, first_b),
        ], ticker
        assert mine[0].connection_id == cid_b  # told by B's first snapshot: A could not say it
        # B's clean stop closes its connection: a disconnect gap opens, if B normalized it before it stopped.
        after = [g for g in gaps if g.ticker == ticker and g.start_ns >= first_b]
        assert [(g.kind, g.connection_id, g.end_ns) for g in after] in ([], [("disconnect", cid_b, None)])
        updates = [x for x in outputs if isinstance(x, r.OrderBookUpdate) and x.ticker == ticker]
        assert yes_book(updates) == truth[ticker], ticker
    print(f"A: {len(captured[conn_a])} frames captured, {len(lost)} lost at the kill; B: {sent_b} frames")


async def test_book_state_is_never_published_ahead_of_its_records(nats_server: NatsServer,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    """A ticker's book state reaches the table changelog only after the records it accounts for are stored.

    Otherwise a worker killed between the two resumes from a state that has seen frames whose records
    were never stored, skips them as duplicates when it re-reads their raw event, and loses them. A core
    subscriber sees one publisher's messages in publish order, whatever their subjects.
    """
    seen: list[tuple[str, bytes]] = []
    nc = await nats.connect(nats_server.url)

    async def collect(msg: Msg) -> None:
        seen.append((msg.subject, msg.data))

    env = "kalshi-dev"
    changelog_topic = f"ssmd-{env}-books-changelog"
    for topic in (changelog_topic, topic_name(env, "normalized")):
        await nc.subscribe(naming.topic_subject_base(topic) + ".>", cb=collect)
    try:
        async with Simulator(test_config(markets=6, seed=4), key_path=tmp_path / "key.pem") as sim:
            # Checkpoints many times a second, so the run writes many states to check.
            settings = settings_for(sim, nats_server.url, tmp_path, env=env, checkpoint_interval=0.02)
            async with running(settings) as ctx:
                assert ctx.app.tables["books"].changelog_topic.get_topic_name() == changelog_topic
                counters = ctx.services["normalizer"].counters

                def sent() -> int:
                    return sum(len(v) for v in sim.ground_truth.sent.values())

                await wait_for(lambda: sent() > 6, 20, "the first snapshots")
                for _ in range(100):
                    await sim.step(2)
                    await asyncio.sleep(0.005)
                await wait_for(lambda: counters.frames - counters.markers >= sent(), 30, "frames normalized")
                await read_settled(nats_server.url, topic_name(env, "normalized"))
    finally:
        await nc.close()

    stored: set[tuple[int | None, int | None, int | None]] = set()
    checked = 0
    changelog_subjects = naming.topic_subject_base(changelog_topic) + "."
    for subject, data in seen:
        if not subject.startswith(changelog_subjects):
            stored |= {(x.connection_id, x.sid, x.seq) for x in codec.decode_batch(data)
                       if isinstance(x, r.OrderBookUpdate | r.Trade)}  # fmt: skip
            continue
        state = json.loads(data)
        for sid, seq in state["seqs"].items():
            assert (state["conn"], int(sid), seq) in stored, (state["conn"], sid, seq)
            checked += 1
    assert checked > 100


def _frame(at: int, type_: str, sid: int, seq: int, msg: dict[str, Any]) -> r.RawFrame:
    data = json.dumps({"type": type_, "sid": sid, "seq": seq, "msg": {"market_ticker": "A", **msg}}).encode()
    return r.RawFrame(at, type_, data, 7, sid, seq, "A")


def test_replayed_events_change_nothing_and_emit_nothing() -> None:
    """A worker resuming from a state ahead of its committed offset re-reads events the state holds."""
    events = [
        [_frame(1_000, "orderbook_snapshot", 1, 1, {"yes_dollars_fp": [["0.4000", "10.00"]]})],
        [markers.gap_frame(2_000, 7, 1, 2, 4, ["A"])],
        [_frame(2_000, "orderbook_delta", 1, 4, {"price_dollars": "0.4000", "delta_fp": "1.00", "side": "yes"}),
         _frame(3_000, "orderbook_snapshot", 1, 5, {"yes_dollars_fp": [["0.4000", "12.00"]]})],
    ]  # fmt: skip
    table: dict[str, Any] = {}
    first = Normalizer(table)
    for position, frames in enumerate(events, start=1):
        first.begin(position)
        for f in frames:
            first.process(f)
        first.commit()
    saved = json.loads(json.dumps(table))

    again = Normalizer(table)  # restarted: the table holds the state after every event above
    for position, frames in enumerate(events[1:], start=2):
        again.begin(position)
        out = Output()
        for f in frames:
            again.process(f, out)
        assert (out.records, out.resync) == ([], set())
        again.commit()
    assert json.loads(json.dumps(table)) == saved
    assert again.counters.replayed == 3
    again.begin(4)
    out = again.process(_frame(4_000, "orderbook_delta", 1, 6, {"price_dollars": "0.4000", "delta_fp": "-2.00",
                                                                "side": "yes"}))  # fmt: skip
    (update,) = out.records
    assert isinstance(update, r.OrderBookUpdate) and not update.flagged
    assert update.bids == (r.Level(Decimal("0.4"), Decimal(10)),)
