"""The connector agent: Kalshi frames onto the raw stream, byte for byte, batched per partition.

A :class:`Capture` service runs in every worker that has the ``connector`` agent. It owns a
:class:`~ssmd.connector.Connector` and, for every frame the exchange sends:

1. reads its envelope cheaply (type, sid, seq, market) and checks the sequence of its
   (connection, sid) (:class:`~ssmd.capture.sequencer.Sequencer`): a gap becomes an ``ssmd.gap`` marker
   on each affected ticker's partition, and a ``get_snapshot`` for just those tickers; a terminal error
   (10, 25) that ends a sid becomes a ``seq_reset`` gap marker for the sid's tickers (the connector
   subscribes them again, which brings fresh snapshots);
2. wraps it in a :class:`~ssmd.records.RawFrame` (receive time, connection id, per-connection frame
   number) and queues it on its ticker's partition (control frames, which name no market, on partition
   0) in the :class:`~ssmd.capture.batcher.Batcher`, which publishes group-committed ``Batch`` events.

A closed connection becomes ``ssmd.disconnect`` markers for the tickers it carried. Malformed and unknown
frames are kept like any other (they are data).

Ownership follows the partitions: when the worker also runs the normalizer, it captures exactly the
markets whose partition of the raw topic it is assigned (re-checked every second), so adding a worker
spreads the capture and a dead worker's markets move to the survivor that inherits its partitions. A
worker without the normalizer captures every selected market.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from mode import Service

from ssmd import codec
from ssmd.app import FEED
from ssmd.capture import markers, resync
from ssmd.capture.batcher import Batcher
from ssmd.capture.cpuload import CpuGauge
from ssmd.capture.handoff import Handoff
from ssmd.capture.headers import envelope, error_code
from ssmd.capture.sequencer import SeqGap, Sequencer
from ssmd.kalshi.protocol import TERMINAL_ERRORS
from ssmd.partitioning import partition_for
from ssmd.records import U64_END, RawFrame, unchecked_constructor

_raw_frame = unchecked_constructor(RawFrame)

if TYPE_CHECKING:
    from ssmd.app import AppContext
    from ssmd.connector import ConnectionEvent, Connector

log = logging.getLogger("ssmd.agents.connector")

OWNERSHIP_POLL = 1.0


class CaptureCore:
    """The frame path without I/O: envelope, sequence check, ownership, markers, batching."""

    def __init__(self, partitions: int, batcher: Batcher) -> None:
        self.partitions = partitions
        self.batcher = batcher
        self.sequencer = Sequencer()
        self.owned: frozenset[int] | None = None  # None: every partition
        self._frame_no: dict[int, int] = {}
        self.local_connections: set[int] = set()
        """Every connection this process opened (the normalizer beside it trusts these over others)."""
        self.resync_wanted: set[str] = set()
        self.dropped_unowned = 0

    def owns(self, ticker: str) -> bool:
        return self.owned is None or partition_for(ticker, self.partitions) in self.owned

    def on_frame(self, raw: bytes, received_ns: int, connection_id: int) -> None:
        type_, sid, seq, ticker = envelope(raw)
        gap = self.sequencer.observe(connection_id, sid, seq, ticker)
        if gap is not None:
            self._gap(gap, received_ns)
        if ticker is None and sid is not None and seq is not None and error_code(raw) in TERMINAL_ERRORS:
            self._sid_ended(connection_id, sid, seq, received_ns)
        partition = 0  # control frames, which name no market
        if ticker:
            partition = partition_for(ticker, self.partitions)
            if self.owned is not None and partition not in self.owned:
                self.dropped_unowned += 1
                return
        n = self._frame_no.get(connection_id, 0) + 1
        self._frame_no[connection_id] = n
        if n == 1:
            self.local_connections.add(connection_id)
        sid, seq = sid or None, seq or None
        if type(raw) is bytes and (sid is None or sid < U64_END) and (seq is None or seq < U64_END):
            # Every other field is ours and valid: skip RawFrame's checks (a tenth of the frame's cost).
            frame = _raw_frame(received_ns, type_, raw, connection_id, sid, seq, ticker or "", n)
        else:
            frame = RawFrame(received_ns, type_, raw, connection_id, sid, seq, ticker or "", n)
        self.batcher.add(partition, frame)

    def _gap(self, gap: SeqGap, received_ns: int) -> None:
        log.warning("seq gap on connection %d sid %d: expected %d, got %d (%d markets)",
                    gap.connection_id, gap.sid, gap.expected, gap.received, len(gap.tickers))  # fmt: skip
        for p, tickers in self._by_partition(gap.tickers).items():
            frame = markers.gap_frame(received_ns, gap.connection_id, gap.sid, gap.expected, gap.received, tickers)
            self.batcher.add(p, frame)
        self.resync_wanted |= {t for t in gap.tickers if self.owns(t)}

    def _sid_ended(self, connection_id: int, sid: int, seq: int, received_ns: int) -> None:
        # The connector subscribes the markets again on a new sid (fresh snapshots); what the exchange
        # did not send in between is lost for every market of the old sid.
        tickers = self.sequencer.end(connection_id, sid)
        log.warning("exchange ended sid %d on connection %d (%d markets)", sid, connection_id, len(tickers))
        for p, group in self._by_partition(tickers).items():
            self.batcher.add(p, markers.gap_frame(received_ns, connection_id, sid, seq, seq, group, "seq_reset"))

    def on_closed(self, connection_id: int, at_ns: int, reason: str) -> None:
        tickers = self.sequencer.tickers_of(connection_id)
        for p, group in self._by_partition(tickers).items():
            self.batcher.add(p, markers.disconnect_frame(at_ns, connection_id, reason, group))
        self.sequencer.forget(connection_id)
        self._frame_no.pop(connection_id, None)

    def _by_partition(self, tickers: frozenset[str]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for t in tickers:
            if self.owns(t):
                out.setdefault(partition_for(t, self.partitions), []).append(t)
        return out


def install(ctx: AppContext) -> None:
    app, raw_topic = ctx.app, ctx.raw

    handoff = Handoff()
    hand_off = "normalizer" in ctx.agents  # else nobody in this process takes the batches

    async def send(partition: int, frames: list[RawFrame]) -> None:
        data = codec.encode_batch(frames)
        if hand_off:
            handoff.put(data, frames)
        await (await raw_topic.send_value(data, partition))

    class Capture(Service):
        """Runs the connector and the batcher for the app's lifetime."""

        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            self.load = CpuGauge()
            self.batcher = Batcher(send, on_pressure=self._pressure, cpu_pressure=self.load.pressure)
            self.core = CaptureCore(ctx.partitions, self.batcher)
            self.connector: Connector | None = None
            self.handoff = handoff
            """This process's raw batches, for the normalizer beside it (:mod:`ssmd.capture.handoff`)."""
            self.resync_requests = 0
            """Resync requests received over NATS (from normalizers in other workers)."""
            ctx.services["capture"] = self

        def _pressure(self, on: bool) -> None:
            if self.connector is not None:
                (self.connector.pause_reading if on else self.connector.resume_reading)()

        def _event(self, ev: ConnectionEvent) -> None:
            if ev.kind == "close":
                self.core.on_closed(ev.connection_id, ev.at_ns or time.time_ns(), ev.reason)

        async def on_start(self) -> None:
            from ssmd.connector import Connector, ConnectorOptions

            self.core.owned = self._assigned()
            options = ConnectorOptions(shard_key=lambda t: partition_for(t, ctx.partitions))
            self.connector = Connector(ctx.settings, self.core.on_frame, options=options,
                                       owns=self.core.owns, on_event=self._event)  # fmt: skip
            await self.connector.start()
            # Normalizers running in other workers ask for snapshots over NATS (ssmd.capture.resync).
            await resync.listen(app.producer, ctx.env, FEED, self._requested)

        def _requested(self, ticker: str) -> None:
            self.resync_requests += 1
            self.resync({ticker})

        def _assigned(self) -> frozenset[int] | None:
            if "normalizer" not in ctx.agents:
                return None
            name = raw_topic.get_topic_name()
            return frozenset(tp.partition for tp in app.consumer.assignment() if tp.topic == name)

        @Service.task
        async def _follow_partitions(self) -> None:
            while not self.should_stop:
                await self.sleep(OWNERSHIP_POLL)
                owned = self._assigned()
                if owned != self.core.owned and self.connector is not None:
                    log.info("capturing partitions %s", sorted(owned) if owned is not None else "all")
                    self.core.owned = owned
                    self.connector.set_owner(self.core.owns)

        @Service.task
        async def _resync(self) -> None:
            while not self.should_stop:
                await self.sleep(0.05)
                if self.core.resync_wanted and self.connector is not None:
                    tickers, self.core.resync_wanted = self.core.resync_wanted, set()
                    await self.connector.resync(tickers)

        def resync(self, tickers: set[str]) -> None:
            """Ask for fresh snapshots of ``tickers`` (those this worker captures)."""
            self.core.resync_wanted |= {t for t in tickers if self.core.owns(t)}

        async def on_stop(self) -> None:
            # Order matters: stop reading the exchange, then deliver what was read, then give up.
            if self.connector is not None:
                await self.connector.stop()
            try:
                async with asyncio.timeout(10):
                    await self.batcher.drain()
            except TimeoutError:
                log.error("stopping with %d raw frames not acknowledged", self.batcher.buffered)
            await self.batcher.close()

    app.service(Capture)
