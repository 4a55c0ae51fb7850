"""Archive writers against bare baselines, on frames from the simulator's market model.

Run: ``python bench/bench_archive.py [--frames N] [--markets M] [--batch B] [--repeat R]``.

The model's messages are framed as the simulator sends them (one sid per channel, seq per sid,
snapshots first), normalized by the real normalizer into records, then:

- raw: :class:`~ssmd.archive.RawArchiver` (line encoding, hourly files, spool, zstd, manifests) fed
  one event of B frames at a time, against the baseline ``zstd`` alone on the same JSONL lines
  (the least any raw archiver must do), and the compression ratio on the frames' bytes;
- normalized: :class:`~ssmd.archive.NormalizedArchiver` (Cap'n Proto encoding, ticker-day files,
  manifests), against ``codec.encode`` + ``zstd`` alone on the same records;

both into an in-memory object store, so the figures are the writers' own CPU cost. Each figure is the
best of R runs, in records/s, with bytes per record and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import zstandard

from ssmd import codec
from ssmd.archive import NormalizedArchiver, RawArchiver
from ssmd.archive.raw import encode_line
from ssmd.normalize.normalizer import Normalizer, Output
from ssmd.records import AnyRecord, RawFrame
from ssmd.sim.model import MarketModel
from ssmd.sim.render import snapshot_body
from ssmd.store import ObjectInfo

T0 = int(dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC).timestamp()) * 10**9
STEP_NS = 200_000  # 5k frames/s of simulated time: a busy hour fits in the run


class MemoryStore:
    """Objects in a dict: takes the store's cost out of the writers' figures."""

    url = "memory://"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def put(self, key: str, data: bytes) -> None:
        self.objects[key] = data

    async def get(self, key: str) -> bytes:
        from ssmd.store import ObjectNotFound

        try:
            return self.objects[key]
        except KeyError:
            raise ObjectNotFound(key, key=key) from None

    async def head(self, key: str) -> ObjectInfo | None:
        return None

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        for key in sorted(k for k in self.objects if k.startswith(prefix)):
            yield ObjectInfo(key, len(self.objects[key]), dt.datetime.now(dt.UTC))

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    async def delete_prefix(self, prefix: str) -> int:
        keys = [k for k in self.objects if k.startswith(prefix)]
        for k in keys:
            del self.objects[k]
        return len(keys)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


def simulate(frames: int, markets: int) -> list[RawFrame]:
    """Frames as one simulator connection would send them, receive times STEP_NS apart."""
    clock = itertools.count(T0, STEP_NS)
    model = MarketModel(markets=markets, seed=1, clock=lambda: next(clock))
    sids: dict[str, int] = {}
    seqs: dict[int, int] = {}
    out: list[RawFrame] = []

    def add(channel: str, type_: str, ticker: str, body: str, sequenced: bool = True) -> None:
        sid = sids.setdefault(channel, len(sids) + 1)
        seq = seqs[sid] = seqs.get(sid, 0) + 1
        text = (f'{{"type":"{type_}","sid":{sid},"seq":{seq},"msg":{body}}}' if sequenced
                else f'{{"type":"{type_}","sid":{sid},"msg":{body}}}')
        ns = T0 + len(out) * STEP_NS
        out.append(RawFrame(ns, type_, text.encode(), 1, sid, seq if sequenced else None, ticker, len(out) + 1))

    for m in model.market_list:
        yes, no = m.book.copy_levels()
        add("orderbook_delta", "orderbook_snapshot", m.ticker, snapshot_body(m.ticker, m.market_id, yes, no, False,
                                                                              False))
    while len(out) < frames:
        for o in model.step():
            add(str(o.channel), str(o.type), o.ticker or "", o.body, sequenced=o.channel != "ticker")
    return out[:frames]


def normalize(frames: Sequence[RawFrame]) -> list[AnyRecord]:
    n, out = Normalizer(), Output()
    for f in frames:
        n.process(f, out)
    return out.records


def best(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


async def _archive(writer: Any, items: Sequence[Any], batch: int) -> None:
    for i in range(0, len(items), batch):
        await writer.add(items[i : i + batch], (0, i // batch + 1))
    await writer.flush()


def run_writer(cls: Any, items: Sequence[Any], batch: int) -> MemoryStore:
    store = MemoryStore()
    with tempfile.TemporaryDirectory() as spool:
        writer = cls(store, env="kalshi-bench", spool_dir=Path(spool), clock=lambda: T0)
        asyncio.run(_archive(writer, items, batch))
    return store


def run_batches(batches: Sequence[tuple[bytes, int]]) -> MemoryStore:
    async def feed(writer: NormalizedArchiver) -> None:
        for i, (data, received_ns) in enumerate(batches):
            await writer.add_encoded(codec.split_batch(data), (0, i + 1), received_ns)
        await writer.flush()

    store = MemoryStore()
    with tempfile.TemporaryDirectory() as spool:
        asyncio.run(feed(NormalizedArchiver(store, env="kalshi-bench", spool_dir=Path(spool), clock=lambda: T0)))
    return store


def data_bytes(store: MemoryStore, suffix: str) -> int:
    return sum(len(v) for k, v in store.objects.items() if k.endswith(suffix))


def report(name: str, n: int, t: float, size: int, base_t: float, base_size: int) -> None:
    print(f"{name:<12} {n / t:>12,.0f} rec/s  {size / n:7.1f} B/rec   | zstd alone {n / base_t:>12,.0f} rec/s "
          f"{base_size / n:7.1f} B/rec   | speed x{base_t / t:.2f}  size x{size / base_size:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=200_000)
    ap.add_argument("--markets", type=int, default=300)
    ap.add_argument("--batch", type=int, default=100, help="records per input event")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--level", type=int, default=3, help="zstd level (writers and baselines)")
    args = ap.parse_args()

    frames = simulate(args.frames, args.markets)
    records = normalize(frames)
    frame_bytes = sum(len(f.data) for f in frames)
    kinds: dict[str, int] = {}
    for r in records:
        kinds[type(r).__name__] = kinds.get(type(r).__name__, 0) + 1
    print(f"{len(frames):,} frames ({frame_bytes / len(frames):.0f} B mean) over {args.markets} markets -> "
          f"{len(records):,} records {kinds}; batches of {args.batch}; best of {args.repeat}")

    zc = zstandard.ZstdCompressor(level=args.level)
    lines = b"".join(encode_line(f) for f in frames)
    base_t, base = best(args.repeat, lambda: zc.compress(b"".join(encode_line(f) for f in frames)))
    t, store = best(args.repeat, lambda: run_writer(RawArchiver, frames, args.batch))
    raw_size = data_bytes(store, ".jsonl.zst")
    report("raw", len(frames), t, raw_size, base_t, len(base))
    print(f"{'':<12} compression: frames {frame_bytes / raw_size:.2f}x, lines {len(lines) / raw_size:.2f}x "
          f"(zstd alone on the lines: {len(lines) / len(base):.2f}x); {len(store.objects)} objects")

    base_t, base = best(args.repeat, lambda: zc.compress(b"".join(codec.encode(r) for r in records)))
    t, store = best(args.repeat, lambda: run_writer(NormalizedArchiver, records, args.batch))
    norm_size = data_bytes(store, ".capnp.zst")
    report("normalized", len(records), t, norm_size, base_t, len(base))
    print(f"{'':<12} {sum(1 for k in store.objects if k.endswith('.capnp.zst'))} ticker-day files, "
          f"{sum(1 for k in store.objects if k.endswith('manifest.json'))} manifests")

    # The archiver agent's path: Batch messages off the stream, split without decoding (add_encoded).
    batches = [(codec.encode_batch(records[i : i + args.batch]), records[i].received_ns)
               for i in range(0, len(records), args.batch)]
    base_t, base = best(args.repeat, lambda: zc.compress(b"".join(
        m.message for data, _ in batches for m in codec.split_batch(data))))
    t, store = best(args.repeat, lambda: run_batches(batches))
    report("norm batches", len(records), t, data_bytes(store, ".capnp.zst"), base_t, len(base))
    print(f"{'':<12} (baseline: split_batch + zstd)")


if __name__ == "__main__":
    main()
