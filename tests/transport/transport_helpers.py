"""Helpers for transport tests: in-process Faust apps and polling."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import faust

from ssmd.testing import wait_for


def make_app(app_id: str, broker: str, **kw: Any) -> faust.App:
    """A Faust app set up for in-process tests (no web server, fast commits)."""
    kw.setdefault("store", "memory://")
    kw.setdefault("web_enabled", False)
    kw.setdefault("broker_commit_interval", 0.3)
    kw.setdefault("topic_partitions", 2)
    kw.setdefault("datadir", tempfile.mkdtemp(prefix="faust-"))
    return faust.App(app_id, broker=broker, **kw)


@contextlib.asynccontextmanager
async def running(app: faust.App, within: float = 20.0) -> AsyncIterator[faust.App]:
    """Start ``app`` in this process, wait for its first assignment and recovery, stop it after."""
    await app.start()
    try:
        await wait_for(lambda: bool(app.consumer.assignment()) and app.tables.recovery.completed.is_set()
                       and not app.rebalancing, within, "the first assignment")
        yield app
    finally:
        try:
            await asyncio.wait_for(app.stop(), 60)
        except TimeoutError:
            for task in asyncio.all_tasks():  # say where a stuck stop is stuck
                task.print_stack(limit=8)
            raise
