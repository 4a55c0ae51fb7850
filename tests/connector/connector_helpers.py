"""Connector test helpers: a frame recorder, settings for a simulator, server-side subscription truth."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from ssmd.connector import ConnectionEvent, Connector, ConnectorOptions
from ssmd.connector.types import MarketsCallback
from ssmd.settings import Settings
from ssmd.sim import Simulator

FAST = ConnectorOptions(backoff_initial=0.05, backoff_cap=0.4, ping_interval=None, stable_after=0.5,
                        compression=False, rest_rate=None)


class Recorder:
    """Collects what a Connector delivers: frames (decoded too) and connection events."""

    def __init__(self) -> None:
        self.frames: list[tuple[bytes, int, int]] = []
        self.events: list[ConnectionEvent] = []
        self._arrived = asyncio.Event()

    def on_frame(self, raw: bytes, received_ns: int, connection_id: int) -> None:
        self.frames.append((raw, received_ns, connection_id))
        self._arrived.set()

    def on_event(self, event: ConnectionEvent) -> None:
        self.events.append(event)

    def decoded(self, since: int = 0) -> list[dict[str, Any]]:
        return [msgspec.json.decode(raw) for raw, _, _ in self.frames[since:]]

    def of_type(self, type_: str, since: int = 0) -> list[dict[str, Any]]:
        return [f for f in self.decoded(since) if f.get("type") == type_]

    async def until(self, predicate: Callable[[], bool], limit: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (re-checked on every frame and every 50 ms)."""
        async with asyncio.timeout(limit):
            while not predicate():
                self._arrived.clear()
                try:
                    async with asyncio.timeout(0.05):
                        await self._arrived.wait()
                except TimeoutError:
                    pass


def settings_for(sim: Simulator, key_path: Path, **overrides: Any) -> Settings:
    assert sim.client_key is not None
    return Settings(kalshi_ws_url=sim.ws_url, kalshi_rest_url=sim.rest_url, kalshi_key_id=sim.client_key.key_id,
                    kalshi_private_key=str(key_path), **overrides)


def server_tickers(sim: Simulator, channel: str = "orderbook_delta") -> set[str]:
    """Markets the simulator itself holds subscribed on ``channel``, over all live connections."""
    out: set[str] = set()
    for session in sim.server.sessions():
        for sub in session.subs.values():
            if sub.channel == channel and sub.tickers is not None:
                out |= set(sub.tickers)
    return out


def connector(sim: Simulator, key_path: Path, rec: Recorder, *, markets: tuple[str, ...] = (),
              stale_after: float = 30.0, on_markets: MarketsCallback | None = None, **options: Any) -> Connector:
    settings = settings_for(sim, key_path, markets=markets, stale_after=stale_after)
    return Connector(settings, rec.on_frame, options=dataclasses.replace(FAST, **options), on_event=rec.on_event,
                     on_markets=on_markets)
