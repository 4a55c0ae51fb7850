"""``ssmd archive rebuild``: a day's normalized archive re-made from its raw archive, replacing the old one."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from ssmd import records as r
from ssmd.archive import ArchiveReader, NormalizedArchiver, RawArchiver
from ssmd.archive.rebuild import rebuild_day
from ssmd.normalize.normalizer import Normalizer, Output
from ssmd.settings import Settings
from ssmd.store import ObjectStore

DAY = dt.date(2026, 8, 27)
T0 = int(dt.datetime(2026, 8, 27, 13, 0, tzinfo=dt.UTC).timestamp() * 1e9)


def _frames() -> list[r.RawFrame]:
    def f(n: int, body: dict[str, object]) -> r.RawFrame:
        return r.RawFrame(T0 + n * 1_000_000, str(body["type"]), json.dumps(body).encode(), 7, frame_no=n)

    out = [f(1, {"type": "subscribed", "id": 1, "msg": {"channel": "orderbook_delta", "sid": 1}})]
    for i, ticker in enumerate(["A.1", "B.2"]):
        out.append(f(2 + i, {"type": "orderbook_snapshot", "sid": 1, "seq": 1 + i, "msg": {
            "market_ticker": ticker, "market_id": "m", "yes_dollars_fp": [["0.4000", "10.00"]],
            "no_dollars_fp": [["0.5500", "3.00"]]}}))  # fmt: skip
    for n in range(4, 40):
        ticker = "A.1" if n % 2 else "B.2"
        out.append(f(n, {"type": "orderbook_delta", "sid": 1, "seq": n - 1, "msg": {
            "market_ticker": ticker, "market_id": "m", "price_dollars": "0.4000", "delta_fp": "1.00",
            "side": "yes", "ts_ms": 1}}))  # fmt: skip
        if n % 5 == 0:
            out.append(f(n, {"type": "trade", "sid": 2, "seq": n // 5, "msg": {
                "market_ticker": ticker, "trade_id": f"t{n}", "yes_price_dollars": "0.4000", "count_fp": "1.00",
                "taker_side": "yes", "ts_ms": 1}}))  # fmt: skip
    out.append(f(50, {"type": "not-kalshi"}))
    out.append(r.RawFrame(T0 + 51_000_000, "orderbook_delta", b"{truncated", 7, frame_no=51))
    return out


async def _counts(store: ObjectStore) -> dict[str, int]:
    reader = ArchiveReader(store, env="kalshi-dev")
    counts: dict[str, int] = {}
    for td in await reader.ticker_days(date=DAY):
        counts[f"{td.data_type}/{td.ticker}"] = len(await reader.records(td.data_type, td.ticker, DAY))
    return counts


async def test_rebuild_replaces_the_day_with_a_fresh_normalization(store: ObjectStore, tmp_path: Path) -> None:
    frames = _frames()
    raw = RawArchiver(store, env="kalshi-dev", spool_dir=tmp_path / "raw")
    await raw.add(frames, (0, 1))
    await raw.flush()
    # A wrong normalized archive for the day (e.g. written by a parser that misread a new format).
    wrong = NormalizedArchiver(store, env="kalshi-dev", spool_dir=tmp_path / "norm")
    await wrong.add([r.Trade("A.1", r.e4_to_price(1), r.e2_to_size(100), "buy", "bogus", T0)], (0, 1))
    await wrong.flush()

    expected = Output()
    n = Normalizer()
    for frame in frames:
        n.process(frame, expected)
    want: dict[str, int] = {}
    kinds = {r.Trade: "trade", r.OrderBookUpdate: "orderbook", r.MarketStatus: "status", r.Gap: "gap"}
    for rec in expected.records:
        key = f"{kinds[type(rec)]}/{rec.ticker}"  # type: ignore[union-attr]
        want[key] = want.get(key, 0) + 1

    result = await rebuild_day(store, "kalshi-dev", DAY)
    assert (result.frames, result.malformed) == (len(frames), 1)
    assert await _counts(store) == want
    again = await rebuild_day(store, "kalshi-dev", DAY)  # idempotent: nothing doubled
    assert again.records == result.records and await _counts(store) == want
    trades = await ArchiveReader(store, env="kalshi-dev").records("trade", "A.1", DAY)
    assert "bogus" not in {t.trade_id for t in trades}  # type: ignore[union-attr]


def test_rebuild_cli_dry_run(tmp_path: Path) -> None:
    import asyncio

    from ssmd.store import open_store

    settings = Settings(store_url=f"file://{tmp_path / 'store'}")

    async def write() -> None:
        async with open_store(settings) as store:
            raw = RawArchiver(store, env="kalshi-dev", spool_dir=tmp_path / "raw")
            await raw.add(_frames(), (0, 1))
            await raw.flush()

    asyncio.run(write())
    out = subprocess.run(
        [sys.executable, "-m", "ssmd.cli", "archive", "rebuild", DAY.isoformat(), "--dry-run",
         "--store-url", settings.store_url],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{DAY}: {len(_frames())} raw frames (1 malformed) -> would write ")
