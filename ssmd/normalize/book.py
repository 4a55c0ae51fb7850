"""One market's order book as Kalshi keeps it (YES bids and NO bids), in exact integers.

Prices are ten-thousandths of a dollar, sizes hundredths of a contract. The normalized view is the
YES contract: bids = YES bids; asks = NO bids at price ``1 - p``.

A book is *valid* only between a snapshot and the first inconsistency: a delta before any snapshot,
or one that drives a level below zero, makes it invalid (:class:`BookInvalid`) until the next
snapshot. The state is a plain dict (:meth:`Book.state`) so a Faust table can keep it in its changelog.
"""

from __future__ import annotations

from typing import Any, Literal

from ssmd.errors import SsmdError
from ssmd.kalshi import fixedpoint

BookSide = Literal["yes", "no"]
ONE = fixedpoint.ONE_DOLLAR


class BookInvalid(SsmdError):
    """The delta cannot be applied: the book has no snapshot, or the level would go negative."""


class Book:
    __slots__ = ("no", "valid", "yes")

    def __init__(self) -> None:
        self.yes: dict[int, int] = {}
        self.no: dict[int, int] = {}
        self.valid = False

    def snapshot(self, yes: tuple[tuple[int, int], ...], no: tuple[tuple[int, int], ...]) -> None:
        """Replace the whole book; the book is valid afterwards."""
        self.yes = {p: s for p, s in yes if s > 0}
        self.no = {p: s for p, s in no if s > 0}
        self.valid = True

    def apply(self, side: BookSide, price_e4: int, delta_e2: int) -> int:
        """Apply a signed change at ``(side, price)``; return the level's new absolute size.

        Raises :class:`BookInvalid` (and marks the book invalid) when the book has no snapshot or the
        level would go below zero; the book is then left as it was.
        """
        if not self.valid:
            msg = "delta before any snapshot (or after the book went bad)"
            raise BookInvalid(msg)
        levels = self.yes if side == "yes" else self.no
        size = levels.get(price_e4, 0) + delta_e2
        if size < 0:
            self.valid = False
            msg = f"delta {delta_e2} drives {side} {price_e4} below zero"
            raise BookInvalid(msg)
        if size:
            levels[price_e4] = size
        else:
            levels.pop(price_e4, None)
        return size

    def invalidate(self) -> None:
        self.valid = False

    def bids(self) -> list[tuple[int, int]]:
        """YES bids, best (highest price) first."""
        return sorted(self.yes.items(), reverse=True)

    def asks(self) -> list[tuple[int, int]]:
        """YES asks (from NO bids at ``1 - p``), best (lowest price) first."""
        return sorted((ONE - p, s) for p, s in self.no.items())

    def state(self) -> dict[str, Any]:
        """A copy as plain data: ``(price, size)`` pairs (JSON arrays in the changelog) per side."""
        # list(items()) copies in C: a checkpoint copies every active book while the loop waits.
        return {"yes": list(self.yes.items()), "no": list(self.no.items()), "valid": self.valid}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Book:
        book = cls()
        book.yes = {int(p): int(s) for p, s in state.get("yes", ())}
        book.no = {int(p): int(s) for p, s in state.get("no", ())}
        book.valid = bool(state.get("valid", False))
        return book
