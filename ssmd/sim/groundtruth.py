"""Ground truth: every frame the simulator wrote to each connection, and every book after every change.

Tests of consumers compare their output with this: a frame is identified by (connection id, position),
and carries ``n``, the number of the last model message whose effect it reflects (a delta's own number;
for a snapshot, the model's position when it was taken; 0 for control frames). :meth:`book_at` rebuilds
any market's book as of any ``n``.

Kept in memory when ``memory`` is set, and/or appended to JSONL files in ``directory``:
``frames.jsonl`` (``{"conn", "n", "fate": "sent"|"dropped", "frame"}``) and ``books.jsonl``
(``{"n", "ticker", "yes": [[price, size], ...], "no": [...]}``, full book after each change, strings in
the current wire format; lines with ``n`` 0 hold the initial books).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import msgspec

from ssmd.kalshi.fixedpoint import count_str, price_str
from ssmd.sim.book import Levels, Side
from ssmd.sim.universe import Market

_encode = msgspec.json.Encoder().encode


@dataclass(slots=True, frozen=True)
class SentFrame:
    n: int
    text: str


@dataclass
class GroundTruth:
    memory: bool = False
    directory: Path | None = None
    sent: dict[int, list[SentFrame]] = field(default_factory=dict)
    dropped: dict[int, list[SentFrame]] = field(default_factory=dict)
    initial: dict[str, tuple[Levels, Levels]] = field(default_factory=dict)
    changes: dict[str, list[tuple[int, Side, int, int]]] = field(default_factory=dict)
    _frames_file: IO[bytes] | None = None
    _books_file: IO[bytes] | None = None

    @property
    def enabled(self) -> bool:
        return self.memory or self.directory is not None

    def open(self, markets: list[Market]) -> None:
        """Start recording from the model's initial books."""
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._frames_file = (self.directory / "frames.jsonl").open("ab")
            self._books_file = (self.directory / "books.jsonl").open("ab")
        for m in markets:
            self.add_market(m)

    def add_market(self, m: Market) -> None:
        if self.memory:
            self.initial[m.ticker] = m.book.copy_levels()
        if self._books_file is not None:
            self._write_book(0, m)

    def close(self) -> None:
        for f in (self._frames_file, self._books_file):
            if f is not None:
                f.close()
        self._frames_file = self._books_file = None

    def on_sent(self, conn: int, frames: list[tuple[int, str]]) -> None:
        if self.memory:
            self.sent.setdefault(conn, []).extend(SentFrame(n, t) for n, t in frames)
        if self._frames_file is not None:
            self._frames_file.write(b"".join(
                _encode({"conn": conn, "n": n, "fate": "sent", "frame": t}) + b"\n" for n, t in frames
            ))

    def on_dropped(self, conn: int, n: int, text: str) -> None:
        if self.memory:
            self.dropped.setdefault(conn, []).append(SentFrame(n, text))
        if self._frames_file is not None:
            self._frames_file.write(_encode({"conn": conn, "n": n, "fate": "dropped", "frame": text}) + b"\n")

    def on_book(self, n: int, m: Market, side: Side, price: int, size: int) -> None:
        if self.memory:
            self.changes.setdefault(m.ticker, []).append((n, side, price, size))
        if self._books_file is not None:
            self._write_book(n, m)

    def _write_book(self, n: int, m: Market) -> None:
        assert self._books_file is not None
        yes, no = m.book.copy_levels()
        self._books_file.write(_encode({
            "n": n, "ticker": m.ticker,
            "yes": [[price_str(p), count_str(s)] for p, s in yes],
            "no": [[price_str(p), count_str(s)] for p, s in no],
        }) + b"\n")

    def frames(self, conn: int) -> list[str]:
        """Texts of the frames written to connection ``conn``, in wire order."""
        return [f.text for f in self.sent.get(conn, [])]

    def book_at(self, ticker: str, n: int | None = None) -> tuple[Levels, Levels]:
        """(YES levels, NO levels) ascending, in integer units, after model message ``n`` (None: latest).

        Requires ``memory``; a market created later starts empty.
        """
        yes_levels, no_levels = self.initial.get(ticker, ([], []))
        yes, no = dict(yes_levels), dict(no_levels)
        for change_n, side, price, size in self.changes.get(ticker, []):
            if n is not None and change_n > n:
                break
            levels = yes if side == "yes" else no
            if size:
                levels[price] = size
            else:
                levels.pop(price, None)
        return sorted(yes.items()), sorted(no.items())
