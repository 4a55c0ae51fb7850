"""Redis snapshot updates/s (issue 6) against a bare redis-py pipeline in the same run.

Starts a valkey-server (``ssmd.devstack``), builds a realistic mix of normalized records (one-level
book changes and trades over ``--markets`` tickers, 10% snapshots), and measures:

- ssmd: :meth:`ssmd.snapshot.Snapshotter.apply` on batches of ``--batch`` records (what the snapshotter
  agent does per event): records/s and Redis commands/s;
- baseline: redis-py alone sending one HSET per record in one pipeline per batch (no book keeping, no
  top-of-book): records/s.

    python bench/bench_snapshot.py [--records 50000] [--batch 200] [--markets 200]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402

from ssmd import records as r  # noqa: E402
from ssmd.devstack import ValkeyServer  # noqa: E402
from ssmd.snapshot import Snapshotter  # noqa: E402


def make_records(n: int, markets: int, seed: int = 1) -> list[r.AnyRecord]:
    rng = random.Random(seed)
    tickers = [f"KXBENCH-26NOV24-T{i}.99" for i in range(markets)]
    out: list[r.AnyRecord] = []
    for i in range(n):
        t = rng.choice(tickers)
        price = Decimal(rng.randint(1, 99)) / 100
        size = Decimal(rng.randint(0, 5000)) / 100
        roll = rng.random()
        if roll < 0.1:
            bids = tuple(r.Level(Decimal(p) / 100, Decimal(10)) for p in range(30, 40))
            asks = tuple(r.Level(Decimal(p) / 100, Decimal(10)) for p in range(41, 51))
            out.append(r.OrderBookUpdate(t, "snapshot", bids, asks, 1_000 + i))
        elif roll < 0.8:
            level = (r.Level(price, size),)
            out.append(r.OrderBookUpdate(t, "change", level if roll < 0.45 else (), () if roll < 0.45 else level,
                                         1_000 + i, 2_000 + i))  # fmt: skip
        else:
            out.append(r.Trade(t, price, Decimal(1) + size, "buy", f"t{i}", 1_000 + i, 2_000 + i))
    return out


async def run(args: argparse.Namespace) -> None:
    recs = make_records(args.records, args.markets)
    batches = [recs[i : i + args.batch] for i in range(0, len(recs), args.batch)]
    with ValkeyServer() as server:
        client = aioredis.from_url(server.url)
        snap = Snapshotter(client, "bench")
        await snap.apply(batches[0])  # warm-up (connection, first books)
        t0 = time.perf_counter()
        for b in batches:
            await snap.apply(b)
        ssmd_s = time.perf_counter() - t0
        commands = snap.writes

        t0 = time.perf_counter()
        for b in batches:
            pipe = client.pipeline(transaction=False)
            for rec in b:
                pipe.hset(f"base:{rec.ticker}", mapping={"ts": rec.received_ns})  # type: ignore[union-attr]
            await pipe.execute()
        base_s = time.perf_counter() - t0
        await client.aclose()
    n = len(recs)
    print(f"records: {n} in batches of {args.batch}, {args.markets} markets")
    print(f"ssmd Snapshotter.apply : {n / ssmd_s:10.0f} records/s ({commands / ssmd_s:8.0f} Redis commands/s)")
    print(f"redis-py pipeline alone: {n / base_s:10.0f} records/s (one HSET per record)")
    print(f"ratio ssmd / baseline  : {base_s / ssmd_s:10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--markets", type=int, default=200)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
