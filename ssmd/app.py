"""The ssmd Faust application: topics, tables and the agents a worker runs.

One app per environment (``app id = ssmd-{env}``) on the ``nats://`` transport. Streams between
stages carry **batches** (design.md, "Throughput"): one Faust event holds a Cap'n Proto ``Batch`` of
one partition's records in receive order, and a ticker's partition is
:func:`ssmd.partitioning.partition_for` everywhere.

=================================  ==========================================================
topic                              content
=================================  ==========================================================
``{env}.kalshi.raw``               ``Batch`` of RawFrame (exchange frames byte for byte, and
                                   ``ssmd.*`` marker frames), partition = the ticker's
``{env}.kalshi.normalized``        ``Batch`` of Trade / OrderBookUpdate / MarketStatus / Gap,
                                   same partition as the raw batch they came from
=================================  ==========================================================

Per-ticker public subjects ``{env}.kalshi.{trade|orderbook|status|gap}.{ticker}`` carry one record each
(the record's own struct as root, as in the seed) as core NATS messages for live subscribers; the
durable copy is the normalized topic.

Agents are chosen by name (:data:`AGENTS`, ``ssmd worker --agents``); each module's ``install(ctx)``
declares its agents, services and tables on the app.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust

from ssmd import names
from ssmd.errors import ConfigError
from ssmd.settings import Settings

FEED = "kalshi"

AGENTS: dict[str, str] = {
    "connector": "ssmd.agents.connector",
    "normalizer": "ssmd.agents.normalizer",
    "snapshotter": "ssmd.agents.snapshotter",
    "activity": "ssmd.agents.activity",
    "archiver": "ssmd.agents.archiver",
    "raw_archiver": "ssmd.agents.raw_archiver",
}
"""Agent name -> module with ``install(ctx: AppContext) -> None``, in start order."""

GROUPS: dict[str, tuple[str, ...]] = {
    "": ("connector", "normalizer", "snapshotter", "activity"),
    "archiver": ("archiver",),
    "raw-archiver": ("raw_archiver",),
}
"""Agents that run together in one app (one consumer group). The archivers hold events until their
upload, which must not stall the pipeline's rebalances, so they run in apps of their own; the raw
archiver's app is a singleton (one writer per hour file)."""

DEFAULT_AGENTS = GROUPS[""]


def group_of(agents: Iterable[str]) -> str:
    """The one app group the agents belong to; :class:`ConfigError` if they span several."""
    groups = {g for a in agents for g, members in GROUPS.items() if a in members}
    if len(groups) != 1:
        listing = "; ".join(f"{' '.join(m)}" for m in GROUPS.values())
        msg = f"agents {', '.join(agents)} cannot share one worker: run these groups in separate workers: {listing}"
        raise ConfigError(msg)
    return groups.pop()


@dataclass
class AppContext:
    """What agents share: settings, the app, its batch topics, and services other agents may call."""

    settings: Settings
    app: faust.App
    raw: Any
    normalized: Any
    agents: tuple[str, ...]
    services: dict[str, Any] = field(default_factory=dict)

    @property
    def env(self) -> str:
        return self.settings.env

    @property
    def partitions(self) -> int:
        return self.settings.partitions


TABLES = ("books", "activity")
"""Tables of the pipeline group's agents (their changelog topics are ``{app id}-{table}-changelog``)."""


def topic_name(env: str, type_: str) -> str:
    return names.subject_prefix(env, FEED, type_)


@functools.cache
def server_names(env: str) -> frozenset[str]:
    """Every JetStream stream and KV bucket stream the apps of ``env`` create (for teardown)."""
    from ssmd.transport import naming

    topics = [topic_name(env, "raw"), topic_name(env, "normalized")]
    out: set[str] = set()
    for group in GROUPS:
        app = names.app_id(env, group)
        topics += [f"{app}-__assignor-__leader", *(f"{app}-{table}-changelog" for table in TABLES)]
        out |= {f"KV_{naming.offsets_bucket(app)}", f"KV_{naming.group_bucket(app)}"}
    return frozenset(out | {naming.stream_name(t) for t in topics})


def create_app(settings: Settings, agents: Iterable[str] | None = None, **faust_options: Any) -> AppContext:
    """Build the Faust app for ``settings`` with the named agents (all by default)."""
    chosen = tuple(agents) if agents is not None else DEFAULT_AGENTS
    unknown = [a for a in chosen if a not in AGENTS]
    if unknown:
        msg = f"unknown agent(s) {', '.join(unknown)}: choose from {', '.join(AGENTS)}"
        raise ConfigError(msg)
    group = group_of(chosen)
    if settings.nats_url is None:
        msg = "no NATS server: set --nats-url / SSMD_NATS_URL (ssmd dev up starts one)"
        raise ConfigError(msg)
    options: dict[str, Any] = {
        "broker": ";".join(f"nats://{u.split('://', 1)[-1]}" for u in settings.nats_url.replace(",", ";").split(";")),
        "store": "memory://",
        "topic_partitions": settings.partitions,
        "web_port": settings.web_port,
        "web_host": "127.0.0.1",
        "web_bind": "127.0.0.1",
        "datadir": f"{settings.data_dir}/faust",
        "broker_commit_interval": 1.0,
        # Tables (normalizer state) use JSON; the batch topics carry raw Cap'n Proto bytes.
        "value_serializer": "json",
        "key_serializer": "json",
        # An undecodable message is counted and set aside on the dead-letter subject, never fatal.
        "Topic": "ssmd.transport.dlq:Topic",
    }
    if group:
        # Archivers hold events until they are uploaded: a rebalance must not wait for them.
        options["stream_wait_empty"] = False
    options.update(faust_options)
    Path(options["datadir"]).mkdir(parents=True, exist_ok=True)
    app = faust.App(names.app_id(settings.env, group), **options)
    batches: dict[str, Any] = {"partitions": settings.partitions, "key_serializer": "raw", "value_serializer": "raw"}
    raw = app.topic(topic_name(settings.env, "raw"), **batches)
    normalized = app.topic(topic_name(settings.env, "normalized"), **batches)
    ctx = AppContext(settings, app, raw, normalized, chosen)
    for name in chosen:
        importlib.import_module(AGENTS[name]).install(ctx)
    return ctx
