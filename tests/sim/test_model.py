"""The market model: determinism for a seed, self-consistent books, ground truth that matches the wire."""

from __future__ import annotations

import json
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any

from ssmd.kalshi.fixedpoint import price_units
from ssmd.sim.model import MarketModel
from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import SimClient
from ssmd.sim.testing import test_config as make_config


def fixed_clock() -> Any:
    ticks = count()
    return lambda: 1_790_000_000_000_000_000 + next(ticks) * 1_000_000


def run(seed: int, steps: int, **kwargs: Any) -> tuple[list[str], list[tuple[str, str, str]]]:
    model = MarketModel(markets=200, seed=seed, lifecycle_prob=0.02, clock=fixed_clock(), **kwargs)
    outs = [(o.type, o.ticker, o.body) for _ in range(steps) for o in model.step()]
    return list(model.markets), outs


def test_same_seed_same_universe_and_messages_different_seed_differs() -> None:
    a, b, c = run(7, 3000), run(7, 3000), run(8, 3000)
    assert a == b
    assert a[0] != c[0] and a[1] != c[1]
    assert len({t for t in a[0]}) == len(a[0])  # tickers are unique


def test_sizes_from_a_handful_to_thousands() -> None:
    assert len(MarketModel(markets=3, seed=1).markets) == 3
    big = MarketModel(markets=5000, seed=1)
    assert len(big.markets) == 5000 and len(big.series) > 10
    assert any("." in t for t in big.markets)  # decimal strikes, as real tickers have


def test_books_never_cross_and_never_go_negative_over_long_runs() -> None:
    model = MarketModel(markets=30, seed=11, lifecycle_prob=0.01, subpenny=0.5)
    for i in range(20_000):
        model.step()  # Book.apply raises if a level would go negative
        if i % 1000 == 0:
            for m in model.markets.values():  # the cached best prices agree with the levels
                for side, levels in (("yes", m.book.yes), ("no", m.book.no)):
                    best = max(levels, default=None)
                    assert m.book.best(side) == (None if best is None else (best, levels[best]))  # type: ignore[arg-type]
    for m in model.markets.values():
        assert all(size > 0 for size in (*m.book.yes.values(), *m.book.no.values()))
        if m.book.yes and m.book.no:
            assert max(m.book.yes) + max(m.book.no) < 10_000, m.ticker
        assert set(m.book.yes) <= set(m.grid) and {10_000 - p for p in m.book.no} <= set(m.grid)


async def test_ground_truth_books_equal_books_rebuilt_from_the_frames_sent(tmp_path: Path) -> None:
    async with Simulator(make_config(record_dir=tmp_path)) as sim:
        c = await SimClient.connect(sim)
        tickers = list(sim.model.markets)
        await c.subscribe(["orderbook_delta"], market_tickers=tickers)
        await sim.step(500)
        await c.drain()
        await c.close()
    truth = sim.ground_truth
    books: dict[str, dict[str, dict[int, int]]] = {}
    frames = truth.frames(1)
    assert frames and all(isinstance(f, str) for f in frames)
    checked = 0
    for sent in truth.sent[1]:
        f = json.loads(sent.text)
        m = f.get("msg", {})
        if f["type"] == "orderbook_snapshot":
            books[m["market_ticker"]] = {
                s: {price_units(p): int(Decimal(q) * 100) for p, q in m.get(f"{s}_dollars_fp", [])}
                for s in ("yes", "no")
            }
        elif f["type"] == "orderbook_delta":
            side = books[m["market_ticker"]][m["side"]]
            p = price_units(m["price_dollars"])
            side[p] = side.get(p, 0) + int(Decimal(m["delta_fp"]) * 100)
            if not side[p]:
                del side[p]
            yes, no = truth.book_at(m["market_ticker"], sent.n)
            assert (sorted(books[m["market_ticker"]]["yes"].items()), sorted(books[m["market_ticker"]]["no"].items())) \
                == (yes, no)
            checked += 1
    assert checked > 100
    dumped = [json.loads(line) for line in (tmp_path / "frames.jsonl").read_text().splitlines()]
    assert [d["frame"] for d in dumped if d["conn"] == 1] == frames
    book_lines = (tmp_path / "books.jsonl").read_text().splitlines()
    assert len(book_lines) == len(tickers) + sum(len(v) for v in truth.changes.values())
