"""``ssmd archive ls|cat|cat-raw`` in a real process, over an archive the writers built."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from archive_helpers import DAY, ENV, SEC, T0, Clock

from ssmd.archive import NormalizedArchiver, RawArchiver
from ssmd.archive.timefmt import NS_PER_DAY
from ssmd.records import Gap, RawFrame, Trade
from ssmd.store.local import FileStore

# Until `archive` is routed by ssmd.cli, drive the command module exactly as the CLI does.
_DRIVER = (
    "import argparse, sys; from ssmd.commands import archive as a; p = argparse.ArgumentParser(prog='ssmd archive');"
    " a.add_arguments(p); sys.exit(a.run(p.parse_args(sys.argv[1:])))"
)
TICKER = "KXGOLDH-26AUG2711-T4615.99"


def ssmd_archive(store: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-c", _DRIVER, *args, "--env", ENV, "--store-url", f"file://{store}"],
                          capture_output=True, timeout=60)


async def _build(root: Path, tmp: Path) -> None:
    store = FileStore(f"file://{root}")
    clock = Clock(T0 + 100 * SEC)
    norm = NormalizedArchiver(store, env=ENV, spool_dir=tmp / "n", clock=clock, close_after=1)
    trade = Trade(TICKER, Decimal("0.0100"), Decimal("0.50"), "sell", "x1", T0 + SEC, T0, 1, 1, 9)
    await norm.add([trade, Trade("KXBTC-1", Decimal("1"), Decimal("3"), "buy", "x2", T0 + 2 * SEC)], (0, 1))
    await norm.add([Gap("KXBTC-1", "disconnect", T0 + 10 * SEC, T0 + 20 * SEC, T0 + 20 * SEC)], (0, 2))
    raw = RawArchiver(store, env=ENV, spool_dir=tmp / "r", clock=clock, close_after=1)
    await raw.add([RawFrame(T0 + SEC, "trade", b'{"type":"trade","msg":{}}', 9, frame_no=1),
                   RawFrame(T0 + 2 * SEC, "error", b"\x00binary\n", 9, frame_no=2)], (0, 1))
    clock.now = T0 + NS_PER_DAY + 2 * SEC
    await norm.flush()
    await raw.flush()


def test_ls_cat_and_cat_raw(tmp_path: Path) -> None:
    root = tmp_path / "store"
    asyncio.run(_build(root, tmp_path))

    ls = ssmd_archive(root, "ls", "--date", DAY.isoformat())
    assert ls.returncode == 0, ls.stderr
    rows = [line.split() for line in ls.stdout.decode().splitlines()]
    assert rows[0][:6] == ["TYPE", "DATE", "TICKER", "STATUS", "CONDITION", "SCORE"]
    assert ["gap", "2025-12-14", "KXBTC-1", "complete", "degraded", "0.9999", "1"] == rows[1][:7]
    assert ["trade", "2025-12-14", "KXBTC-1", "complete", "degraded", "0.9999"] == rows[2][:6]
    assert ["trade", "2025-12-14", TICKER, "complete", "available", "1.0000", "1"] == rows[3][:7]

    only = ssmd_archive(root, "ls", "--type", "trade", "--ticker", TICKER, "--json")
    assert [json.loads(x)["ticker"] for x in only.stdout.splitlines()] == [TICKER]

    cat = ssmd_archive(root, "cat", "trade", TICKER, DAY.isoformat())
    assert cat.returncode == 0, cat.stderr
    (rec,) = [json.loads(x) for x in cat.stdout.splitlines()]
    assert rec["record"] == "Trade" and rec["yes_price"] == "0.0100" and rec["count"] == "0.50"
    assert rec["taker_side"] == "sell" and rec["received_ns"] == T0 + SEC

    missing = ssmd_archive(root, "cat", "trade", "NOPE", DAY.isoformat())
    assert missing.returncode == 1 and b"no trade data for NOPE" in missing.stderr

    frames = ssmd_archive(root, "cat-raw", DAY.isoformat(), "--data")
    assert frames.stdout == b'{"type":"trade","msg":{}}\n' + b"\x00binary\n\n"
    lines = ssmd_archive(root, "cat-raw", DAY.isoformat(), "--type", "trades").stdout.splitlines()
    assert [json.loads(x)["data"] for x in lines] == [{"type": "trade", "msg": {}}]

    raw_ls = ssmd_archive(root, "ls", "--raw")
    assert raw_ls.returncode == 0 and "trades-00.jsonl.zst" in raw_ls.stdout.decode()
