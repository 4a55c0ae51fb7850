"""The normalizer agent: raw batches -> Trade, OrderBookUpdate, MarketStatus and Gap records.

For each raw ``Batch`` event (one partition's frames in receive order) it runs the
:class:`~ssmd.normalize.normalizer.Normalizer` state machine, whose per-ticker state (book, sequence
positions, open gap) lives in the ``books`` table, co-partitioned with the raw topic, so a restarted or
rebalanced worker recovers it from the table's changelog. Per event it then:

1. sends the records as one ``Batch`` to the normalized topic, on the same partition, and waits for its
   acknowledgement before it writes the new state to the table (whose changelog is published as soon as
   it is written): a crash can leave the state behind the outputs, never ahead of them. Re-processing an
   event from an older state yields the same records, and the transport's deterministic ``Nats-Msg-Id``
   drops the copies; the input offset is committed after both (at-least-once), so the state is usually
   *ahead* of the committed offset, and the events it already holds are skipped by their offset
   (:meth:`~ssmd.normalize.normalizer.Normalizer.begin`);
2. publishes each record on its public subject ``{env}.kalshi.{type}.{ticker}`` (core NATS, for live
   subscribers);
3. asks the capture service for fresh snapshots of tickers whose books need recovery.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mode import Service

from ssmd import codec, names
from ssmd import records as r
from ssmd.errors import DecodeError
from ssmd.normalize.normalizer import Normalizer, Output

if TYPE_CHECKING:
    from ssmd.app import AppContext

log = logging.getLogger("ssmd.agents.normalizer")

PUBLIC_TYPES: dict[type[Any], str] = {
    r.Trade: "trade",
    r.OrderBookUpdate: "orderbook",
    r.MarketStatus: "status",
    r.Gap: "gap",
}


class PublicSubjects(Service):
    """Core NATS publisher of per-ticker records on the seed's public subjects."""

    def __init__(self, ctx: AppContext, **kw: Any) -> None:
        super().__init__(**kw)
        self.ctx = ctx
        self.nc: Any = None
        self.published = 0

    async def on_start(self) -> None:
        from ssmd.natsconn import connect

        assert self.ctx.settings.nats_url is not None
        self.nc = await connect(self.ctx.settings.nats_url, max_reconnect_attempts=-1)

    async def publish(self, records: list[r.AnyRecord], structs: list[bytes]) -> None:
        """Publish each record (``structs[i]`` is ``records[i]`` encoded with its own struct as root)."""
        env = self.ctx.env
        for rec, payload in zip(records, structs, strict=True):
            ticker = getattr(rec, "ticker", "")
            kind = PUBLIC_TYPES.get(type(rec))
            if not ticker or kind is None:
                continue
            await self.nc.publish(names.subject(env, "kalshi", kind, ticker), payload)
            self.published += 1

    async def on_stop(self) -> None:
        if self.nc is not None:
            await self.nc.drain()


def install(ctx: AppContext) -> None:
    app = ctx.app
    books = app.Table("books", default=None, partitions=ctx.partitions)
    normalizer = Normalizer(books)
    ctx.services["normalizer"] = normalizer
    public = PublicSubjects(ctx, loop=app.loop, beacon=app.beacon)
    ctx.services["public"] = public
    app.add_dependency(public)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _forget(sender: Any, *args: Any, **kw: Any) -> None:
        # Another worker may change these tickers' state before the partitions come back.
        normalizer.forget()

    @app.agent(ctx.raw, name="normalizer")
    async def normalize(stream: Any) -> None:
        async for event in stream.events():
            partition = event.message.partition
            try:
                frames = codec.decode_batch(event.value)
            except DecodeError as e:
                log.error("undecodable raw batch at partition %d offset %d: %s", partition, event.message.offset, e)
                continue
            out = Output()
            normalizer.begin(event.message.offset)
            for frame in frames:
                if isinstance(frame, r.RawFrame):
                    normalizer.process(frame, out)
            structs: list[bytes] = []
            if out.records:
                # One encoding gives both the batch and each record's public-subject message.
                batch, structs = codec.encode_batch_and_structs(out.records)
                sent = await ctx.normalized.send(value=batch, partition=partition)
                # State after outputs: the table's changelog must never get ahead of the normalized
                # stream, or a worker killed in between would resume past frames whose records were
                # never stored (it would skip them as duplicates when it re-reads the raw event).
                await sent
            normalizer.commit()
            if out.records:
                await public.publish(out.records, structs)
            capture = ctx.services.get("capture")
            if out.resync and capture is not None:
                capture.resync(out.resync)
