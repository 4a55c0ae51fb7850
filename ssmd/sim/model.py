"""The deterministic market model: order flow, trades and lifecycle over the universe.

Contract:
- For a seed, the sequence of messages (:class:`~ssmd.sim.render.Out`) is fixed: content depends only on
  the RNG; timestamps come from the injected ``clock`` (pass a fixed clock for byte-identical output).
- Books are self-consistent: a NO bid never reaches ``1 - best YES bid`` (no crossed book), a delta never
  drives a level below zero, and a trade consumes book levels from the best price down, each fill
  accompanied by the matching negative ``orderbook_delta``.
- Order flow touches only ``active`` markets; lifecycle moves markets through
  active -> (inactive -> active) -> closed -> determined -> finalized, and replaces a finalized market
  with a newly ``created`` one so the number of live markets stays steady.
- ``on_change(n, market, side, price, size_after)`` is called after every book change (ground truth).
"""

from __future__ import annotations

import math
import random
import time
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ssmd.kalshi.fixedpoint import ONE_DOLLAR, price_str
from ssmd.kalshi.protocol import Channel, LifecycleEvent, MarketStatus, MessageType
from ssmd.sim import render
from ssmd.sim.book import Side
from ssmd.sim.render import Out
from ssmd.sim.universe import Event, Market, Series, generate, grid_of, new_market

Clock = Callable[[], int]
BookHook = Callable[[int, Market, Side, int, int], None]

_SIZES = (1, 1, 2, 3, 5, 10, 10, 20, 25, 50, 100, 150, 250, 500, 1000)
#: Quantiles of an exponential distribution (mean ~3 ticks): how far from fair value new orders rest.
#: A table lookup costs a fraction of ``random.expovariate``.
_OFFSETS = tuple(int(-math.log(1 - (i + 0.5) / 64) / 0.35) for i in range(64))
_LIFE = Channel.MARKET_LIFECYCLE_V2.value
_BOOK = Channel.ORDERBOOK_DELTA.value
_TICKER = Channel.TICKER.value
_TRADE = Channel.TRADE.value


def _uuid4(bits: int) -> str:
    """A version-4 UUID string from 128 random bits (``uuid.UUID`` is several times slower)."""
    h = f"{(bits & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4000 << 64) | (0x8000 << 48):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(slots=True, frozen=True)
class TradeRecord:
    number: int
    trade_id: str
    ticker: str
    count: int
    yes_price: int
    taker: Side
    ts_ns: int


class MarketModel:
    def __init__(
        self, *, markets: int, seed: int, subpenny: float = 0.0, lifecycle_prob: float = 0.002,
        legacy: bool = False, clock: Clock = time.time_ns, trade_history: int = 50_000,
    ) -> None:
        self.rng = random.Random(seed)
        self._random = self.rng.random
        self.clock = clock
        self.legacy = legacy
        self.subpenny = subpenny
        self.lifecycle_prob = lifecycle_prob
        series, events, market_list = generate(self.rng, markets, clock() // 1_000_000_000, subpenny)
        self.series: dict[str, Series] = {s.ticker: s for s in series}
        self.events: dict[str, Event] = {e.event_ticker: e for e in events}
        self.markets: dict[str, Market] = {m.ticker: m for m in market_list}
        self.market_list = market_list
        self.event_list = events
        self.active: list[Market] = list(market_list)
        self._pos = {m.ticker: i for i, m in enumerate(self.active)}
        self.paused: deque[Market] = deque()
        self.retiring: deque[Market] = deque()
        self.unopened: deque[Market] = deque()
        self.trades: deque[TradeRecord] = deque(maxlen=trade_history)
        self.trade_count = 0
        self.n = 0
        """Number of the last message produced (0 before any)."""
        self.on_change: BookHook | None = None
        for m in market_list:
            for _ in range(self.rng.randint(6, 16)):
                pick = self._pick_add(m)
                if pick:
                    m.book.apply(*pick)
            m.ticker_state = self._ticker_state(m)

    # -- driving -----------------------------------------------------------------------------------

    def step(self) -> list[Out]:
        """Advance one step (an order-flow action on one market, or a lifecycle transition)."""
        out: list[Out] = []
        ts = self.clock()
        random = self._random
        if not self.active or random() < self.lifecycle_prob:
            self._lifecycle(ts, out)
            return out
        m = self.active[int(random() * len(self.active))]
        self._flow(m, ts, out)
        top = m.book.top()
        state = (m.last_price, m.volume, m.open_interest, *top)
        if state != m.ticker_state:
            m.ticker_state = state
            m.updated_ts = ts // 1_000_000_000
            self._emit(out, _TICKER, _TICKER, m.ticker, render.ticker_body(m, ts, self.legacy, top))
        return out

    def _emit(self, out: list[Out], type_: str, channel: str, ticker: str, body: str) -> None:
        self.n += 1
        out.append(Out(self.n, type_, channel, ticker, body))

    @staticmethod
    def _ticker_state(m: Market) -> tuple[int, ...]:
        return (m.last_price, m.volume, m.open_interest, *m.book.top())

    # -- order flow --------------------------------------------------------------------------------

    def _flow(self, m: Market, ts: int, out: list[Out]) -> None:
        random, book = self._random, m.book
        if random() < 0.05:
            m.fair = min(max(m.fair + (1 if random() < 0.5 else -1), 1), len(m.grid) - 2)
        r = random()
        depth = len(book.yes) + len(book.no)
        if r < 0.12 and depth:
            self._trade(m, ts, out)
        elif r < 0.55 or depth < 6:
            pick = self._pick_add(m)
            if pick:
                self._delta(out, m, *pick, ts)
        else:
            self._cancel(m, ts, out)

    def _size(self, m: Market) -> int:
        if m.fractional:
            return 1 + int(self._random() * 50_000)
        return _SIZES[int(self._random() * len(_SIZES))] * 100

    def _pick_add(self, m: Market) -> tuple[Side, int, int] | None:
        """A new resting order (side, price, size) that does not cross the book, or None."""
        random, book, grid = self._random, m.book, m.grid
        side: Side = "yes" if random() < 0.5 else "no"
        if len(book.yes) < 3 <= len(book.no):
            side = "yes"
        elif len(book.no) < 3 <= len(book.yes):
            side = "no"
        k = _OFFSETS[int(random() * 64)]
        if side == "yes":
            best_no = book.best("no")
            limit = ONE_DOLLAR - best_no[0] if best_no else ONE_DOLLAR
            price = grid[max(m.fair - k, 0)]
            if price >= limit:
                j = bisect_left(grid, limit) - 1
                if j < 0:
                    return None
                price = grid[j]
        else:
            best_yes = book.best("yes")
            floor = best_yes[0] if best_yes else 0
            ask = grid[min(m.fair + 1 + k, len(grid) - 1)]
            if ask <= floor:
                j = bisect_right(grid, floor)
                if j >= len(grid):
                    return None
                ask = grid[j]
            price = ONE_DOLLAR - ask
        return side, price, self._size(m)

    def _cancel(self, m: Market, ts: int, out: list[Out]) -> None:
        rng, book = self.rng, m.book
        side: Side = "yes" if (book.yes and (not book.no or rng.random() < 0.5)) else "no"
        levels = book.side(side)
        if not levels:
            return
        price = rng.choice(list(levels))
        size = levels[price]
        if rng.random() < 0.4:
            amount = size
        elif m.fractional:
            amount = rng.randint(1, size)
        else:
            amount = rng.randint(1, size // 100) * 100
        self._delta(out, m, side, price, -amount, ts)

    def _trade(self, m: Market, ts: int, out: list[Out]) -> None:
        """A taker order sweeping up to three levels: one trade and one delta per level filled."""
        rng, book = self.rng, m.book
        taker: Side = "yes" if rng.random() < 0.5 else "no"
        if not book.side("no" if taker == "yes" else "yes"):
            taker = "no" if taker == "yes" else "yes"
        consumed: Side = "no" if taker == "yes" else "yes"
        remaining = self._size(m) * rng.choice((1, 1, 2, 4))
        for price, size in sorted(book.side(consumed).items(), reverse=True)[:3]:
            take = min(remaining, size)
            yes_price = ONE_DOLLAR - price if consumed == "no" else price
            self.trade_count += 1
            trade_id = _uuid4(rng.getrandbits(128))
            self.trades.append(TradeRecord(self.trade_count, trade_id, m.ticker, take, yes_price, taker, ts))
            m.last_price, m.last_trade_size = yes_price, take
            m.volume += take
            m.value_traded += take * yes_price
            m.open_interest = m.open_interest + take if rng.random() < 0.6 else max(m.open_interest - take, 0)
            self._emit(out, _TRADE, _TRADE, m.ticker,
                       render.trade_body(m, trade_id, yes_price, take, taker, ts, self.legacy))
            self._delta(out, m, consumed, price, -take, ts)
            remaining -= take
            if not remaining:
                break
        if rng.random() < 0.5:
            step = 1 if taker == "yes" else -1
            m.fair = min(max(m.fair + step, 1), len(m.grid) - 2)

    def _delta(self, out: list[Out], m: Market, side: Side, price: int, delta: int, ts: int) -> None:
        size = m.book.apply(side, price, delta)
        legacy = self.legacy
        self.n += 1
        o = Out(self.n, _BOOK, _BOOK, m.ticker, render.delta_body(m, side, price, delta, ts, legacy))
        if side == "no":
            o.yes_args = (m, side, ONE_DOLLAR - price, delta, ts, legacy)
        out.append(o)
        if self.on_change is not None:
            self.on_change(self.n, m, side, price, size)

    # -- lifecycle ---------------------------------------------------------------------------------

    def _lifecycle(self, ts: int, out: list[Out]) -> None:
        rng = self.rng
        ts_s = ts // 1_000_000_000
        if self.unopened and rng.random() < 0.3:
            # At open_time a market becomes active with no WebSocket event.
            m = self.unopened.popleft()
            m.status, m.open_ts, m.updated_ts = MarketStatus.ACTIVE, ts_s, ts_s
            self._activate(m)
        elif self.retiring and (rng.random() < 0.5 or len(self.active) < 2):
            self._retire_step(self.retiring[0], ts, out)
        elif self.paused and (rng.random() < 0.5 or len(self.active) < 2):
            self._reactivate(self.paused.popleft(), ts, out)
        elif len(self.active) >= 2:
            m = self.active[rng.randrange(len(self.active))]
            r = rng.random()
            m.updated_ts = ts_s
            if r < 0.35:
                # At close_time a market closes with no WebSocket event.
                m.status, m.close_ts = MarketStatus.CLOSED, ts_s
                self._deactivate(m)
                self.retiring.append(m)
            elif r < 0.5:
                m.status = MarketStatus.INACTIVE
                self._deactivate(m)
                self.paused.append(m)
                self._life(out, m, LifecycleEvent.DEACTIVATED, is_deactivated=True)
            elif r < 0.7:
                m.close_ts += 3600
                self._life(out, m, LifecycleEvent.CLOSE_DATE_UPDATED, close_ts=m.close_ts)
            elif r < 0.85:
                m.yes_sub_title = f"{m.yes_sub_title.split(' (')[0]} (rev {self.n})"
                self._life(out, m, LifecycleEvent.METADATA_UPDATED,
                           additional_metadata={"yes_sub_title": m.yes_sub_title})
            elif r < 0.93 and self.subpenny and m.structure == "linear_cent":
                # Finer grid, a superset of the old one: resting levels stay valid.
                fair_price = m.grid[m.fair]
                m.structure, m.grid, m.fractional = "deci_cent", grid_of("deci_cent"), True
                m.fair = bisect_left(m.grid, fair_price)
                self._life(out, m, LifecycleEvent.PRICE_LEVEL_STRUCTURE_UPDATED, price_level_structure=m.structure,
                           price_ranges=render.price_ranges(m.structure))
            else:
                ev = self.events[m.event_ticker]
                multiplier = rng.choice((None, 0.5, 0.0))
                self._emit(out, MessageType.EVENT_FEE_UPDATE, _LIFE, ev.event_ticker,
                           render.fee_update_body(ev, self.series[ev.series_ticker], multiplier))

    def _life(self, out: list[Out], m: Market, event_type: LifecycleEvent, **extra: object) -> None:
        self._emit(out, MessageType.MARKET_LIFECYCLE_V2, _LIFE, m.ticker,
                   render.lifecycle_body(m, event_type.value, **extra))

    def _deactivate(self, m: Market) -> None:
        i = self._pos.pop(m.ticker)
        last = self.active.pop()
        if last is not m:
            self.active[i] = last
            self._pos[last.ticker] = i

    def _activate(self, m: Market) -> None:
        self._pos[m.ticker] = len(self.active)
        self.active.append(m)

    def _reactivate(self, m: Market, ts: int, out: list[Out]) -> None:
        """Reactivation cancels every resting order (one delta per level), then trading resumes."""
        for side in ("yes", "no"):
            for price, size in m.book.levels(side):
                self._delta(out, m, side, price, -size, ts)
        m.status = MarketStatus.ACTIVE
        self._activate(m)
        self._life(out, m, LifecycleEvent.ACTIVATED, is_deactivated=False)

    def _retire_step(self, m: Market, ts: int, out: list[Out]) -> None:
        ts_s = ts // 1_000_000_000
        m.updated_ts = ts_s
        if m.status is MarketStatus.CLOSED:
            yes_wins = self.rng.random() < m.fair / len(m.grid)
            m.status, m.result = MarketStatus.DETERMINED, "yes" if yes_wins else "no"
            m.settlement_value, m.determination_ts = (ONE_DOLLAR if yes_wins else 0), ts_s
            self._life(out, m, LifecycleEvent.DETERMINED, result=m.result, determination_ts=ts_s,
                       settlement_value=price_str(m.settlement_value))
            return
        # A determination is sometimes disputed, then amended (REST status only: the lifecycle channel
        # has no event type for either), before the market is finalized.
        if m.status is MarketStatus.DETERMINED and self.rng.random() < 0.2:
            m.status = MarketStatus.DISPUTED
            return
        if m.status is MarketStatus.DISPUTED:
            m.status = MarketStatus.AMENDED
            return
        self.retiring.popleft()
        m.status, m.settled_ts = MarketStatus.FINALIZED, ts_s
        self._life(out, m, LifecycleEvent.SETTLED, settled_ts=ts_s)
        self._replace(m, ts, out)

    def _replace(self, old: Market, ts: int, out: list[Out]) -> None:
        """A new market (sometimes in a new event) takes a finalized one's place."""
        ts_s = ts // 1_000_000_000
        ev = self.events[old.event_ticker]
        if self.rng.random() < 0.3:
            n = sum(1 for e in self.event_list if e.series_ticker == ev.series_ticker)
            ev = Event(f"{ev.series_ticker}-{ev.sub_title}R{n}", ev.series_ticker, f"{ev.title} (R{n})",
                       f"{ev.sub_title}R{n}", ts_s + 86400)
            self.events[ev.event_ticker] = ev
            self.event_list.append(ev)
            self._emit(out, MessageType.EVENT_LIFECYCLE, _LIFE, ev.event_ticker, render.event_lifecycle_body(ev))
        strike = old.floor_strike or 1.0
        decimals = len(old.ticker.rsplit("-", 1)[1].partition(".")[2])
        m = new_market(self.rng, len(self.market_list), ev, old.strike_type, strike, decimals, ts_s, self.subpenny)
        while m.ticker in self.markets:
            strike += 1.0
            m = new_market(self.rng, len(self.market_list), ev, old.strike_type, strike, decimals, ts_s,
                           self.subpenny)
        self.markets[m.ticker] = m
        self.market_list.append(m)
        ev.markets.append(m.ticker)
        m.ticker_state = self._ticker_state(m)
        m.status = MarketStatus.INITIALIZED
        m.open_ts = ts_s + 60  # it opens at a later lifecycle step, with no WebSocket event
        self.unopened.append(m)
        self._life(out, m, LifecycleEvent.CREATED, **render.created_extra(m))
