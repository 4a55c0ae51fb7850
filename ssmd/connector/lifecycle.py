"""Following ``market_lifecycle_v2``: which markets join and leave the connector's universe.

- ``created`` adds the market when the selection matches it. Lifecycle messages carry the market's
  event (``additional_metadata.event_ticker``) but not its series; the series comes from earlier
  ``event_lifecycle`` messages or, failing that, one REST lookup per event (cached).
- ``determined`` and ``settled`` remove the market: it trades no more.
- Everything else (activated, deactivated, close date, metadata, fees) changes nothing here; those frames
  still reach the raw stream like every other.

A malformed lifecycle message is counted and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import msgspec

from ssmd.connector.rest import RestClient
from ssmd.connector.selection import Selection
from ssmd.kalshi.messages import EventLifecycle, Frame, MarketLifecycle
from ssmd.kalshi.protocol import LifecycleEvent, MessageType

log = logging.getLogger("ssmd.connector")

_decode_market = msgspec.json.Decoder(Frame[MarketLifecycle]).decode
_decode_event = msgspec.json.Decoder(Frame[EventLifecycle]).decode
_ENDED = {LifecycleEvent.DETERMINED.value: "determined", LifecycleEvent.SETTLED.value: "settled"}


class LifecycleFollower:
    def __init__(self, selection: Selection, rest: RestClient, add: Callable[[str, str], None],
                 remove: Callable[[str, str], None]) -> None:
        self.selection = selection
        self.rest = rest
        self._add, self._remove = add, remove
        self.event_series: dict[str, str] = {}
        self.malformed = 0
        self._lookups: dict[str, asyncio.Task[None]] = {}
        self._waiting: dict[str, list[str]] = {}

    def on_message(self, type_: str, raw: bytes) -> None:
        try:
            if type_ == MessageType.EVENT_LIFECYCLE:
                ev = _decode_event(raw).msg
                self.event_series[ev.event_ticker] = ev.series_ticker
                return
            msg = _decode_market(raw).msg
        except msgspec.DecodeError as e:
            self.malformed += 1
            log.warning("malformed %s message skipped: %s", type_, e)
            return
        if msg.event_type == LifecycleEvent.CREATED:
            meta = msg.additional_metadata or {}
            event = meta.get("event_ticker")
            self._created(msg.market_ticker, event if isinstance(event, str) else "")
        elif msg.event_type in _ENDED:
            self._remove(msg.market_ticker, _ENDED[msg.event_type])

    def _created(self, ticker: str, event: str) -> None:
        series = self.event_series.get(event)
        if series is None and event and self.selection.needs_series and not self.selection.matches(ticker, event, None):
            self._waiting.setdefault(event, []).append(ticker)
            if event not in self._lookups:
                self._lookups[event] = asyncio.create_task(self._lookup(event), name=f"series-of-{event}")
            return
        if self.selection.matches(ticker, event or None, series):
            self._add(ticker, event)

    async def _lookup(self, event: str) -> None:
        try:
            series = await self.rest.event_series(event)
        except Exception as e:
            log.warning("cannot find the series of event %s (new markets of it are not captured): %s", event, e)
            series = None
        if series is not None:
            self.event_series[event] = series
        self._lookups.pop(event, None)
        for ticker in self._waiting.pop(event, []):
            if self.selection.matches(ticker, event, series):
                self._add(ticker, event)

    async def stop(self) -> None:
        for task in list(self._lookups.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
