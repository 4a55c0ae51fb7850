"""A Kalshi order book: two bid books (YES bids, NO bids) in integer units.

Prices are ten-thousandths of a dollar on each leg's own scale (a NO bid at 3,000 is a YES ask at
7,000); sizes are hundredths of a contract. A level is absent, never zero.
"""

from __future__ import annotations

from typing import Literal

from ssmd.kalshi.fixedpoint import ONE_DOLLAR

Side = Literal["yes", "no"]
Levels = list[tuple[int, int]]


class Book:
    """Mutate only through :meth:`apply` (the best prices are cached)."""

    __slots__ = ("_best", "no", "yes")

    def __init__(self) -> None:
        self.yes: dict[int, int] = {}
        self.no: dict[int, int] = {}
        self._best: dict[str, int] = {}
        """Cached best price per side; a missing key means "recompute" (-1 = empty side)."""

    def side(self, side: Side) -> dict[int, int]:
        return self.yes if side == "yes" else self.no

    def apply(self, side: Side, price: int, delta: int) -> int:
        """Change the aggregate size at a level by ``delta``; returns the new size (0 = removed).

        Raises ``ValueError`` rather than let a level go negative: the model must never emit that.
        """
        levels = self.yes if side == "yes" else self.no
        size = levels.get(price, 0) + delta
        if size < 0:
            msg = f"level {side}@{price} would go negative ({size})"
            raise ValueError(msg)
        best = self._best.get(side)
        if size:
            levels[price] = size
            if best is not None and price > best:
                self._best[side] = price
        else:
            levels.pop(price, None)
            if best == price:
                del self._best[side]
        return size

    def clear(self) -> None:
        self.yes.clear()
        self.no.clear()
        self._best.clear()

    def best(self, side: Side) -> tuple[int, int] | None:
        """(price, size) of the best (highest) bid on a side, or ``None`` if the side is empty."""
        levels = self.yes if side == "yes" else self.no
        price = self._best.get(side)
        if price is None:
            price = self._best[side] = max(levels, default=-1)
        if price < 0:
            return None
        return price, levels[price]

    def levels(self, side: Side) -> Levels:
        """Levels of a side by ascending price (best bid last), as Kalshi sends them."""
        levels = self.yes if side == "yes" else self.no
        return sorted(levels.items())

    def top(self) -> tuple[int, int, int, int]:
        """(yes_bid, yes_bid_size, yes_ask, yes_ask_size) with Kalshi's summary sentinels.

        yes_ask = 1 - best NO bid; an empty YES side reads bid 0.0000, an empty NO side ask 1.0000.
        """
        bid = self.best("yes")
        no = self.best("no")
        yes_bid, yes_bid_size = bid if bid else (0, 0)
        yes_ask, yes_ask_size = (ONE_DOLLAR - no[0], no[1]) if no else (ONE_DOLLAR, 0)
        return yes_bid, yes_bid_size, yes_ask, yes_ask_size

    def copy_levels(self) -> tuple[Levels, Levels]:
        return self.levels("yes"), self.levels("no")
