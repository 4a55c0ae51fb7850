"""Which markets to capture: the ``markets`` setting, parsed, and its discovery over REST.

``markets`` is a list of items: ``series:X`` (every market of series X), ``event:Y`` (of event Y), or a
market ticker. An empty list means every open market (multivariate combos excluded, as Kalshi's
``market_lifecycle_v2`` does). Discovery asks REST for the *open* markets matching; explicit tickers are
captured whatever their status (the user named them). New markets announced by lifecycle ``created``
messages join when they match (:meth:`Selection.matches`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from ssmd.connector.rest import RestClient
from ssmd.errors import ConfigError
from ssmd.kalshi.protocol import MVE_PREFIX

log = logging.getLogger("ssmd.connector")

_TICKERS_PER_REQUEST = 100


@dataclass(frozen=True)
class Selection:
    series: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()
    tickers: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, items: Iterable[str]) -> Selection:
        """Parse setting items; raises :class:`ConfigError` on an empty ``series:``/``event:`` name."""
        series: set[str] = set()
        events: set[str] = set()
        tickers: set[str] = set()
        for item in (i.strip() for i in items):
            if not item:
                continue
            kind, sep, name = item.partition(":")
            if sep and kind.lower() in ("series", "event"):
                if not name.strip():
                    msg = f"--markets / SSMD_MARKETS: {item!r} names no {kind.lower()}"
                    raise ConfigError(msg)
                (series if kind.lower() == "series" else events).add(name.strip().upper())
            elif sep:
                msg = f"--markets / SSMD_MARKETS: unknown filter {kind!r} in {item!r} (use series:, event: or a ticker)"
                raise ConfigError(msg)
            else:
                tickers.add(item.upper())
        return cls(frozenset(series), frozenset(events), frozenset(tickers))

    @property
    def everything(self) -> bool:
        return not (self.series or self.events or self.tickers)

    @property
    def needs_series(self) -> bool:
        """Whether :meth:`matches` needs a market's series (lifecycle messages do not carry it)."""
        return bool(self.series)

    def matches(self, ticker: str, event_ticker: str | None, series_ticker: str | None) -> bool:
        if self.everything:
            return not ticker.startswith(MVE_PREFIX)
        return (ticker in self.tickers or (event_ticker is not None and event_ticker in self.events)
                or (series_ticker is not None and series_ticker in self.series))

    def describe(self) -> str:
        if self.everything:
            return "all open markets"
        parts = [f"series:{s}" for s in sorted(self.series)] + [f"event:{e}" for e in sorted(self.events)]
        return ", ".join(parts + sorted(self.tickers))


async def discover(rest: RestClient, selection: Selection) -> dict[str, str]:
    """Markets to capture now, as ticker -> event ticker ("" when unknown); see the module contract."""
    found: dict[str, str] = {}

    def add(markets: list[dict[str, object]]) -> None:
        for m in markets:
            event = m.get("event_ticker")
            found[str(m["ticker"])] = event if isinstance(event, str) else ""

    if selection.everything:
        add(await rest.markets(status="open", mve_filter="exclude"))
    for series in sorted(selection.series):
        add(await rest.markets(status="open", series_ticker=series))
    for event in sorted(selection.events):
        add(await rest.markets(status="open", event_ticker=event))
    named = sorted(selection.tickers)
    known: set[str] = set()
    for i in range(0, len(named), _TICKERS_PER_REQUEST):
        batch = await rest.markets(tickers=",".join(named[i : i + _TICKERS_PER_REQUEST]))
        known.update(str(m["ticker"]) for m in batch)
        add(batch)
    for ticker in named:
        if ticker not in known:
            log.warning("market %s is unknown to the exchange; subscribing anyway", ticker)
            found.setdefault(ticker, "")
    return found
