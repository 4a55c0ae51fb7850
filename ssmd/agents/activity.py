"""The activity agent: a windowed table of per-ticker messages per minute.

Counts normalized records per ticker in one-minute tumbling windows (kept for an hour), from the
normalized batches. The stats page reads it, and the quality model can compare a ticker's activity with
its gaps. Counts are added once per ticker per batch, not once per record: a windowed-table update is a
changelog write.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ssmd import codec
from ssmd.errors import DecodeError

if TYPE_CHECKING:
    from ssmd.app import AppContext

WINDOW = timedelta(minutes=1)
KEEP = timedelta(hours=1)


def install(ctx: AppContext) -> None:
    app = ctx.app
    activity = app.Table("activity", default=int, partitions=ctx.partitions).tumbling(WINDOW, expires=KEEP)
    ctx.services["activity"] = activity

    @app.agent(ctx.normalized, name="activity")
    async def count(stream: Any) -> None:
        async for event in stream.events():
            try:
                records = codec.decode_batch(event.value)
            except DecodeError:
                continue  # the normalizer's and archivers' logs report undecodable batches
            per_ticker = Counter(getattr(rec, "ticker", "") for rec in records)
            per_ticker.pop("", None)
            for ticker, n in per_ticker.items():
                activity[ticker] += n
