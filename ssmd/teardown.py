"""Tear an environment's data down by prefix: object-store prefixes, JetStream streams, Redis keys.

An environment owns, and only owns:

- object-store keys under ``ssmd-raw/{env}/`` and ``ssmd-normalized/{env}/``;
- JetStream streams named ``{env}_...`` (KV buckets are streams ``KV_{env}_...``), the streams and KV
  buckets of its Faust apps (:func:`ssmd.app.server_names`: topics, changelogs, committed offsets, group
  membership), and streams whose every subject lies under ``{env}.``;
- Redis keys matching ``{env}:*``.

With a ``date``, only that day's archive objects (raw and normalized, manifests included) are removed;
streams and Redis hold live state, not days, and are left alone. :func:`plan` lists what would go
(``--dry-run``); :func:`execute` removes it and reports what it removed. Both accept ``None`` for a
part that is not configured, so a teardown of an archive-only environment needs no NATS.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ssmd import names
from ssmd.errors import ServerError

if TYPE_CHECKING:
    from ssmd.store import ObjectStore

FEED = "kalshi"


@dataclass
class Plan:
    env: str
    date: dt.date | None
    objects: list[str] = field(default_factory=list)
    streams: list[str] = field(default_factory=list)
    redis_keys: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.objects)} object(s), {len(self.streams)} stream(s), {len(self.redis_keys)} Redis key(s)"


def stream_belongs(env: str, name: str, subjects: list[str]) -> bool:
    """Whether a JetStream stream is part of ``env``: named for it, one of its apps' streams, or all of
    its subjects under ``{env}.``."""
    prefix = names.stream_prefix(env)
    if name.startswith((prefix, f"KV_{prefix}", f"OBJ_{prefix}")):
        return True
    from ssmd.app import server_names

    if name in server_names(env):
        return True
    return bool(subjects) and all(s.startswith(f"{env}.") for s in subjects)


async def _objects(store: ObjectStore, env: str, date: dt.date | None) -> list[str]:
    if date is None:
        return [info.key for p in names.env_prefixes(env) async for info in store.list(p)]
    keys = [info.key async for info in store.list(names.raw_prefix(env, FEED, date))]
    # Normalized keys are type-first (.../v1/{type}/YYYY/MM/DD/...): filter the env's feed by date.
    base = names.normalized_prefix(env, FEED)
    day = names.date_path(date) + "/"
    async for info in store.list(base):
        _type, _, rest = info.key[len(base) :].partition("/")
        if rest.startswith(day):
            keys.append(info.key)
    return keys


async def _streams(nc: Any, env: str) -> list[str]:
    found: list[str] = []
    offset = 0
    while True:
        msg = await nc.request("$JS.API.STREAM.LIST", json.dumps({"offset": offset}).encode(), timeout=5)
        resp = json.loads(msg.data)
        if "error" in resp:
            err = f"JetStream refused to list streams: {resp['error'].get('description', resp['error'])}"
            raise ServerError(err)
        streams = resp.get("streams") or []
        for info in streams:
            config = info["config"]
            if stream_belongs(env, config["name"], config.get("subjects") or []):
                found.append(config["name"])
        offset += len(streams)
        if not streams or offset >= resp.get("total", 0):
            return sorted(found)


async def _redis_keys(client: Any, env: str) -> list[str]:
    from redis.exceptions import ConnectionError as RedisConnectionError

    try:
        pattern = names.redis_pattern(env)
        keys = [k.decode() if isinstance(k, bytes) else k async for k in client.scan_iter(pattern, 1000)]
    except (RedisConnectionError, OSError) as e:
        msg = f"cannot reach Redis: {e}"
        raise ServerError(msg) from None
    return sorted(keys)


async def plan(env: str, date: dt.date | None, *, store: ObjectStore | None, nc: Any | None, redis: Any | None) -> Plan:
    """List everything a teardown of ``env`` (or of its ``date``) would remove; remove nothing."""
    names.validate_env(env)
    p = Plan(env, date)
    if store is not None:
        p.objects = await _objects(store, env, date)
    if date is None and nc is not None:
        p.streams = await _streams(nc, env)
    if date is None and redis is not None:
        p.redis_keys = await _redis_keys(redis, env)
    return p


async def execute(p: Plan, *, store: ObjectStore | None, nc: Any | None, redis: Any | None) -> Plan:
    """Remove what ``p`` lists; return what was removed (a second run finds nothing)."""
    if store is not None:
        for key in p.objects:
            await store.delete(key)
    if nc is not None and p.streams:
        js = nc.jetstream()
        for name in p.streams:
            await js.delete_stream(name)
    if redis is not None:
        for start in range(0, len(p.redis_keys), 1000):
            await redis.delete(*p.redis_keys[start : start + 1000])
    return p
