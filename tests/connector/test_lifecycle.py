"""Following market_lifecycle_v2: created markets join the capture, determined/settled ones leave it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from connector_helpers import Recorder, connector, server_tickers

from ssmd.sim import Simulator

LIFECYCLE_ONLY = {"lifecycle_prob": 1.0}  # every model step is a lifecycle transition


async def _step_until_replacements(sim: Simulator, count: int) -> tuple[set[str], set[str]]:
    """Drive the model until ``count`` markets were created; returns (created, ended) tickers."""
    created: set[str] = set()
    ended: set[str] = set()
    for _ in range(2000):
        for out in await sim.step():
            if out.type == "market_lifecycle_v2" and '"event_type":"created"' in out.body:
                created.add(out.ticker)
            elif out.type == "market_lifecycle_v2" and ('"determined"' in out.body or '"settled"' in out.body):
                ended.add(out.ticker)
        if len(created) >= count:
            return created, ended
    msg = "the simulator created no markets"
    raise AssertionError(msg)


@pytest.mark.parametrize("sim", [LIFECYCLE_ONLY], indirect=True)
async def test_created_markets_are_added_and_ended_ones_dropped(sim: Simulator, key_path: Path) -> None:
    rec = Recorder()
    changes: list[tuple[frozenset[str], frozenset[str]]] = []
    async with connector(sim, key_path, rec, connections=2,
                         on_markets=lambda added, removed: changes.append((added, removed))) as c:
        async with asyncio.timeout(5):
            await c.wait_ready()
        before = c.markets
        created, ended = await _step_until_replacements(sim, 3)
        assert ended and not created & before
        await rec.until(lambda: created <= c.markets and not ended & c.markets)
        async with asyncio.timeout(5):
            await c.wait_ready()
        assert c.markets == (before | created) - ended
        assert server_tickers(sim) == c.markets == server_tickers(sim, "trade")
        assert created <= {f["msg"]["market_ticker"] for f in rec.of_type("orderbook_snapshot")}
        assert set().union(*(a for a, _ in changes)) >= created
        assert set().union(*(r for _, r in changes)) == ended


@pytest.mark.parametrize("sim", [LIFECYCLE_ONLY], indirect=True)
async def test_created_markets_of_selected_series_are_added(sim: Simulator, key_path: Path) -> None:
    # Lifecycle messages do not name the series: the connector learns it from event_lifecycle
    # messages or asks REST for the event.
    series = sorted({m.series_ticker for m in sim.model.market_list})
    rec = Recorder()
    async with connector(sim, key_path, rec, markets=tuple(f"series:{s}" for s in series[::2])) as c:
        async with asyncio.timeout(5):
            await c.wait_ready()
        created, _ = await _step_until_replacements(sim, 12)
        chosen = {t for t in created if sim.model.markets[t].series_ticker in series[::2]}
        assert chosen and created - chosen
        await rec.until(lambda: chosen <= c.markets)
        await asyncio.sleep(0.1)
        assert not {t for t in created - chosen} & c.markets
        assert c.lifecycle.event_series  # learned event -> series
