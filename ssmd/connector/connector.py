"""The :class:`Connector` facade: Kalshi market data in, every frame out through one callback.

Usage (the Faust connector agent wraps this)::

    async with Connector(settings, on_frame) as c:          # on_frame(raw, received_ns, connection_id)
        await c.wait_ready()                                 # optional: discovered and subscribed
        c.set_owner(lambda t: partition_of(t) in mine)       # capture only this worker's partitions
        await c.resync(["KXBTC-25DEC31-B100000"])            # fresh snapshots of just these markets
        c.status()                                           # for the stats page

What it guarantees:

- The *universe* is the markets the ``markets`` setting selects: discovered over REST at start (and again
  after the lifecycle connection reconnects, to catch missed ``created`` messages), grown by lifecycle
  ``created`` messages that match, shrunk by ``determined``/``settled``; the owner can also edit it
  (:meth:`Connector.add_markets`, :meth:`Connector.remove_markets`). The captured set is the universe
  filtered by the owner predicate, which may change at any time (:meth:`Connector.set_owner`).
- Captured markets are sharded over ``connections`` WebSocket connections by ``shard_key(ticker) %
  connections``; with ``shard_key`` = the ticker's partition and ``connections`` dividing the partition
  count, each connection carries whole partitions. Each connection holds one sid per channel.
- ``on_frame`` sees every frame of every connection, in order per connection (see
  :data:`~ssmd.connector.types.FrameCallback`); ``on_event`` sees each connection open and close (for
  disconnect intervals); ``on_markets`` sees universe changes.
- Nothing here raises after start: bad keys, refused upgrades, REST failures and exchange errors are
  retried with backoff and reported in :meth:`Connector.status`. Configuration errors (missing key id,
  unreadable key, bad ``markets`` item) raise :class:`~ssmd.errors.ConfigError` from the constructor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType

from ssmd.connector.backoff import Backoff
from ssmd.connector.keys import load_key
from ssmd.connector.lifecycle import LifecycleFollower
from ssmd.connector.rest import RestClient
from ssmd.connector.selection import Selection, discover
from ssmd.connector.shard import Counters, Shard, WsOptions
from ssmd.connector.subscriptions import DEFAULT_MARKET_CHANNELS, Subscriptions
from ssmd.connector.types import ConnectorStatus, EventCallback, FrameCallback, MarketsCallback, Owner
from ssmd.partitioning import fnv1a32
from ssmd.settings import Settings

log = logging.getLogger("ssmd.connector")


def _everything(ticker: str) -> bool:
    return True


@dataclass(frozen=True)
class ConnectorOptions:
    """Tuning that is not a user setting (the agent or tests choose it)."""

    connections: int = 1
    channels: tuple[str, ...] = DEFAULT_MARKET_CHANNELS
    """Per-market channels to subscribe; add ``"ticker"`` to capture ticker frames too."""
    lifecycle: bool = True
    """Subscribe ``market_lifecycle_v2`` (on connection 0) and follow it."""
    discover: bool = True
    """Fill the universe from REST per the ``markets`` setting (False: only :meth:`Connector.add_markets`)."""
    shard_key: Callable[[str], int] = fnv1a32
    """Which connection carries a ticker: ``shard_key(ticker) % connections``."""
    chunk: int = 500
    ping_interval: float | None = 10.0
    ping_timeout: float | None = 20.0
    backoff_initial: float = 0.5
    backoff_cap: float = 30.0
    stable_after: float = 10.0
    compression: bool = False
    """permessage-deflate: saves bandwidth, costs CPU and disables the fast frame parser."""
    rest_rate: float | None = 10.0


class Connector:
    def __init__(self, settings: Settings, on_frame: FrameCallback, *, options: ConnectorOptions | None = None,
                 owns: Owner | None = None, on_event: EventCallback | None = None,
                 on_markets: MarketsCallback | None = None) -> None:
        settings.require("kalshi_key_id", "kalshi_private_key")
        self.options = opts = options or ConnectorOptions()
        self.selection = Selection.parse(settings.markets)
        key_id, key = str(settings.kalshi_key_id), load_key(str(settings.kalshi_private_key))
        self.rest = RestClient(settings.kalshi_rest_url, key_id=key_id, private_key=key, rate=opts.rest_rate)
        self._owns: Owner = owns or _everything
        self._on_markets = on_markets
        self._universe: dict[str, str] = {}
        self._shard_key = opts.shard_key
        self.discovery_error = ""
        self.counters = Counters()
        self.discovered = asyncio.Event()
        self.lifecycle = LifecycleFollower(self.selection, self.rest, self._lifecycle_add, self._lifecycle_remove)
        ws = WsOptions(settings.kalshi_ws_url, key_id, key, settings.stale_after, opts.ping_interval,
                       opts.ping_timeout, opts.backoff_initial, opts.backoff_cap, opts.stable_after,
                       opts.compression)
        self.shards = [
            Shard(i, ws, Subscriptions(opts.channels, lifecycle=opts.lifecycle and i == 0, chunk=opts.chunk),
                  on_frame=on_frame, on_lifecycle=self.lifecycle.on_message, on_event=on_event,
                  on_reconnect=self._shard_reconnected, counters=self.counters)
            for i in range(max(1, opts.connections))
        ]
        self._tasks: set[asyncio.Task[None]] = set()

    # -- start / stop ------------------------------------------------------------------------------

    async def __aenter__(self) -> Connector:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect every shard and start discovery; returns at once (see :meth:`wait_ready`)."""
        log.info("capturing %s over %d connection(s)", self.selection.describe(), len(self.shards))
        if self.selection.tickers:
            self.add_markets(self.selection.tickers)
        for shard in self.shards:
            shard.start()
        if self.options.discover:
            self._spawn(self._discover_until_done())
        else:
            self.discovered.set()

    async def stop(self) -> None:
        """Close every connection and the REST session; cancels discovery and lookups."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.lifecycle.stop()
        await asyncio.gather(*(s.stop() for s in self.shards))
        await self.rest.close()

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_ready(self) -> None:
        """Wait until discovery is done and every connection carries exactly its markets.

        Waits forever while, e.g., the exchange refuses the key: wrap it in ``asyncio.timeout``.
        """
        await self.discovered.wait()
        while True:
            self.counters.progress.clear()
            if all(s.converged() for s in self.shards):
                return
            await self.counters.progress.wait()

    # -- the universe ------------------------------------------------------------------------------

    @property
    def markets(self) -> frozenset[str]:
        """Every market of the universe (all owners)."""
        return frozenset(self._universe)

    def wanted(self) -> frozenset[str]:
        """The markets this process captures: the universe filtered by the owner predicate."""
        return frozenset(t for t in self._universe if self._owns(t))

    def set_owner(self, owns: Owner | None) -> None:
        """Capture only the markets ``owns`` accepts (None: all); takes effect at once."""
        self._owns = owns or _everything
        self._assign()

    def add_markets(self, tickers: Iterable[str], event_ticker: str = "") -> frozenset[str]:
        """Add markets to the universe; returns those that were new."""
        added = frozenset(t for t in tickers if t not in self._universe)
        for t in added:
            self._universe[t] = event_ticker
        self._changed(added, frozenset())
        return added

    def remove_markets(self, tickers: Iterable[str]) -> frozenset[str]:
        """Drop markets from the universe (their subscriptions are deleted); returns those removed."""
        removed = frozenset(t for t in tickers if self._universe.pop(t, None) is not None)
        self._changed(frozenset(), removed)
        return removed

    def _changed(self, added: frozenset[str], removed: frozenset[str]) -> None:
        if not added and not removed:
            return
        # Incremental: a lifecycle message touches one market, the universe may hold tens of thousands.
        for ticker in added:
            if self._owns(ticker):
                self._shard_of(ticker).want(ticker)
        for ticker in removed:
            self._shard_of(ticker).unwant(ticker)
        if self._on_markets is not None:
            try:
                self._on_markets(added, removed)
            except Exception:
                log.exception("on_markets raised")

    def _shard_of(self, ticker: str) -> Shard:
        return self.shards[self._shard_key(ticker) % len(self.shards)]

    def _assign(self) -> None:
        parts: dict[Shard, set[str]] = {s: set() for s in self.shards}
        for ticker in self._universe:
            if self._owns(ticker):
                parts[self._shard_of(ticker)].add(ticker)
        for shard, wanted in parts.items():
            shard.set_wanted(wanted)

    def _lifecycle_add(self, ticker: str, event_ticker: str) -> None:
        if self.add_markets([ticker], event_ticker):
            log.info("market %s created: capturing it", ticker)

    def _lifecycle_remove(self, ticker: str, why: str) -> None:
        if self.remove_markets([ticker]):
            log.info("market %s %s: dropping it", ticker, why)

    # -- discovery ---------------------------------------------------------------------------------

    async def rediscover(self) -> frozenset[str]:
        """Ask REST for the selected open markets now and add the new ones; returns those added."""
        found = await discover(self.rest, self.selection)
        added = frozenset(t for t in found if t not in self._universe)
        for t in added:
            self._universe[t] = found[t]
        self._changed(added, frozenset())
        return added

    async def _discover_until_done(self) -> None:
        backoff = Backoff(1.0, 60.0)
        while True:
            try:
                added = await self.rediscover()
            except Exception as e:  # REST down or refusing: keep capturing what we have, retry
                self.discovery_error = f"{type(e).__name__}: {e}"
                log.warning("market discovery failed: %s", self.discovery_error)
                await asyncio.sleep(backoff.next())
                continue
            self.discovery_error = ""
            log.info("discovered %d market(s) (%d new)", len(self._universe), len(added))
            self.discovered.set()
            return

    def _shard_reconnected(self, shard: Shard) -> None:
        if shard.subs.lifecycle and self.options.discover and self.discovered.is_set():
            self._spawn(self._discover_until_done())  # lifecycle messages were missed while down

    # -- recovery and status -----------------------------------------------------------------------

    async def resync(self, tickers: Iterable[str]) -> frozenset[str]:
        """Request fresh orderbook snapshots of just ``tickers`` (``get_snapshot`` on their sids).

        Returns the tickers a request went out for; the others are either not captured here or are
        being (re)subscribed already, which brings their snapshot anyway.
        """
        groups: dict[Shard, list[str]] = {}
        for t in tickers:
            groups.setdefault(self._shard_of(t), []).append(t)
        covered: set[str] = set()
        for shard, group in groups.items():
            covered |= await shard.resync(group)
        return frozenset(covered)

    def pause_reading(self) -> None:
        """Stop reading every socket (backpressure from a full downstream buffer)."""
        for shard in self.shards:
            shard.ws.pause_reading()

    def resume_reading(self) -> None:
        for shard in self.shards:
            shard.ws.resume_reading()

    def status(self) -> ConnectorStatus:
        return ConnectorStatus(
            markets=len(self._universe), wanted=sum(len(s.subs.wanted) for s in self.shards),
            discovered=self.discovered.is_set(),
            discovery_error="" if self.discovered.is_set() else self.discovery_error or self.rest.last_error,
            callback_errors=self.counters.callback_errors,
            malformed=self.counters.malformed, rest_requests=self.rest.requests,
            rest_throttled=self.rest.throttled, shards=[s.status() for s in self.shards],
        )

    def last_frame_ns(self) -> int | None:
        times = [s.ws.last_frame_ns for s in self.shards if s.ws.last_frame_ns is not None]
        return max(times) if times else None
