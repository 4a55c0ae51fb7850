"""Series, events and markets of the simulated exchange, generated deterministically from an RNG.

Tickers follow Kalshi's shapes (``KXGOLDH-26NOV2417-T4615.99``: series, date code, strike code), dots
included, so that consumers meet the characters real tickers contain.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

from ssmd.kalshi.fixedpoint import CENT, ONE_DOLLAR
from ssmd.kalshi.protocol import MarketStatus
from ssmd.sim.book import Book

# (series base, title, category, frequency, strike kind, strike base, strike step, decimals)
_SERIES_BASES = (
    ("KXGOLDH", "Gold price", "Financials", "hourly", "greater", 4600.0, 15.0, 2),
    ("KXBTCD", "Bitcoin price", "Crypto", "hourly", "greater", 114000.0, 250.0, 2),
    ("KXHIGHNY", "Highest temperature in NYC", "Climate and Weather", "daily", "between", 50.5, 2.0, 1),
    ("KXINXD", "S&P 500 close", "Financials", "daily", "between", 6800.0, 25.0, 0),
    ("KXFED", "Fed funds rate", "Economics", "monthly", "greater", 3.0, 0.25, 2),
    ("KXETH", "Ethereum price range", "Crypto", "daily", "between", 4000.0, 50.0, 0),
    ("KXCPI", "CPI month over month", "Economics", "monthly", "greater", 0.1, 0.1, 1),
    ("KXRAINNYC", "Rain in NYC", "Climate and Weather", "daily", "greater", 0.5, 0.5, 1),
)
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

#: Price grids: name -> ((start, end, step), ...) in price units; end points are not tradable.
STRUCTURES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "linear_cent": ((0, ONE_DOLLAR, CENT),),
    "deci_cent": ((0, ONE_DOLLAR, CENT // 10),),
    "tapered_deci_cent": ((0, 1000, 10), (1000, 9000, CENT), (9000, ONE_DOLLAR, 10)),
}


def grid_of(structure: str) -> list[int]:
    """Tradable prices of a structure, ascending (0 and 1.0000 excluded)."""
    prices = {p for start, end, step in STRUCTURES[structure] for p in range(start, end + 1, step)}
    return sorted(p for p in prices if 0 < p < ONE_DOLLAR)


@dataclass(slots=True)
class Series:
    ticker: str
    title: str
    category: str
    frequency: str
    fee_type: str = "quadratic"
    fee_multiplier: float = 1.0


@dataclass(slots=True)
class Event:
    event_ticker: str
    series_ticker: str
    title: str
    sub_title: str
    strike_date: int
    markets: list[str] = field(default_factory=list)
    collateral_return_type: str = "MECNET"
    mutually_exclusive: bool = False


@dataclass(slots=True, eq=False)
class Market:
    """One binary market: static description plus the state the order flow changes."""

    index: int
    ticker: str
    event_ticker: str
    series_ticker: str
    market_id: str
    title: str
    yes_sub_title: str
    no_sub_title: str
    strike_type: str
    floor_strike: float | None
    cap_strike: float | None
    structure: str
    grid: list[int]
    fractional: bool
    created_ts: int
    open_ts: int
    close_ts: int
    status: MarketStatus = MarketStatus.ACTIVE
    book: Book = field(default_factory=Book)
    fair: int = 0
    """Index into ``grid`` of the price the flow quotes around."""
    last_price: int = 0
    last_trade_size: int = 0
    volume: int = 0
    open_interest: int = 0
    value_traded: int = 0
    """Sum of count units x price units, for ``dollar_volume``."""
    result: str = ""
    settlement_value: int | None = None
    determination_ts: int | None = None
    settled_ts: int | None = None
    updated_ts: int = 0
    ticker_state: tuple[int, ...] = ()
    wire_ids: str = ""
    """``"market_ticker":"…","market_id":"…"`` as JSON members, rendered once (hot path)."""


def _strike_code(kind: str, value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return ("T" if kind == "greater" else "B") + text


def generate(
    rng: random.Random, n_markets: int, now_s: int, subpenny: float
) -> tuple[list[Series], list[Event], list[Market]]:
    """Exactly ``n_markets`` markets in events of 2-10, events in series of 1-4."""
    series: list[Series] = []
    events: list[Event] = []
    markets: list[Market] = []
    day = rng.randrange(336)
    while len(markets) < n_markets:
        i = len(series)
        base, title, category, freq, kind, strike0, step, dec = _SERIES_BASES[i % len(_SERIES_BASES)]
        s = Series(base + (str(i // len(_SERIES_BASES) + 1) if i >= len(_SERIES_BASES) else ""), title,
                   category, freq)
        series.append(s)
        for e_i in range(rng.randint(1, 4)):
            hour = f"{(9 + e_i) % 24:02d}" if freq == "hourly" else ""
            date = f"26{_MONTHS[(day + e_i) % 12]}{(day + e_i) % 28 + 1:02d}{hour}"
            ev = Event(f"{s.ticker}-{date}", s.ticker, f"{title} on {date}", date, now_s + 86400 * (e_i + 1))
            events.append(ev)
            offset = rng.randint(0, 3)
            for k in range(min(n_markets - len(markets), rng.randint(2, 10))):
                strike = strike0 + step * (k + offset) + (0.99 if dec == 2 and k % 2 else 0.0)
                markets.append(new_market(rng, len(markets), ev, kind, strike, dec, now_s, subpenny))
                ev.markets.append(markets[-1].ticker)
            if len(markets) >= n_markets:
                break
    return series, events, markets


def new_market(
    rng: random.Random, index: int, ev: Event, kind: str, strike: float, decimals: int, now_s: int,
    subpenny: float,
) -> Market:
    ticker = f"{ev.event_ticker}-{_strike_code(kind, strike, decimals)}"
    structure = "linear_cent"
    if subpenny and rng.random() < subpenny:
        structure = rng.choice(("deci_cent", "tapered_deci_cent"))
    grid = grid_of(structure)
    label = f"{strike:.{decimals}f}"
    return Market(
        index=index, ticker=ticker, event_ticker=ev.event_ticker, series_ticker=ev.series_ticker,
        market_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        title=f"{ev.title}: {label}",
        yes_sub_title=f"{'Above' if kind == 'greater' else 'Around'} {label}",
        no_sub_title=f"{'Not above' if kind == 'greater' else 'Not around'} {label}",
        strike_type=kind, floor_strike=strike, cap_strike=strike + 1 if kind == "between" else None,
        structure=structure, grid=grid, fractional=structure != "linear_cent",
        created_ts=now_s, open_ts=now_s, close_ts=ev.strike_date, updated_ts=now_s,
        fair=rng.randint(len(grid) // 5, 4 * len(grid) // 5),
    )
