"""The snapshotter agent: normalized batches -> the Redis snapshot (:mod:`ssmd.snapshot`).

Each event's records are written with one pipelined round trip before the next event is taken, so
the input offset is committed only after Redis has the writes. A redelivered batch rewrites the same
latest values (change records carry absolute sizes), so at-least-once delivery is harmless.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mode import Service

from ssmd import codec
from ssmd.errors import ConfigError, DecodeError
from ssmd.snapshot import Snapshotter

if TYPE_CHECKING:
    from ssmd.app import AppContext

log = logging.getLogger("ssmd.agents.snapshotter")


class RedisClient(Service):
    """One ``redis.asyncio`` client for the app's lifetime."""

    def __init__(self, url: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.url = url
        self.client: Any = None

    async def on_start(self) -> None:
        import redis.asyncio as aioredis

        self.client = aioredis.from_url(self.url, socket_connect_timeout=5, health_check_interval=30)

    async def on_stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()


def install(ctx: AppContext) -> None:
    app = ctx.app
    if ctx.settings.redis_url is None:
        msg = "the snapshotter needs Redis: set --redis-url / SSMD_REDIS_URL"
        raise ConfigError(msg)
    redis = RedisClient(ctx.settings.redis_url, loop=app.loop, beacon=app.beacon)
    app.add_dependency(redis)
    state: dict[str, Snapshotter] = {}
    ctx.services["snapshot"] = state

    @app.agent(ctx.normalized, name="snapshotter")
    async def snapshot(stream: Any) -> None:
        async for event in stream.events():
            snap = state.get("writer")
            if snap is None:
                snap = state["writer"] = Snapshotter(redis.client, ctx.env)
            try:
                records = codec.decode_batch(event.value)
            except DecodeError as e:
                log.error("undecodable normalized batch at partition %d offset %d: %s",
                          event.message.partition, event.message.offset, e)  # fmt: skip
                continue
            await snap.apply(records)
