"""Throughput of the ssmd Cap'n Proto codec: the fast path against pycapnp (the reference), and json/msgspec.

Run: ``python bench/bench_codec.py [--records N] [--batch B] [--repeat R]``. Every figure is
records per second of this process's CPU time (``time.process_time``, so that other processes on a
shared machine do not count), the best of R runs, for both implementations in the same process, with
their ratio:

- raw stream: ``Batch`` messages of RawFrames (a real-sized Kalshi frame each), as the connector
  writes and the normalizer and raw archiver read them;
- normalized stream: a realistic mix (70% one-level book changes, 25% trades, 5% ten-level
  snapshots), then each kind alone;
- the codec work of one frame through the capture path (:meth:`Bench.pipeline`);
- ``split_batch`` (the archivers' path), ``encode_struct`` (public subjects), one record per message;
- json and msgspec round trips of the equivalent dicts, as a yardstick.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from decimal import Decimal

import msgspec

from ssmd import codec
from ssmd.records import AnyRecord, Level, OrderBookUpdate, RawFrame, Trade

TICKER = "KXGOLDH-26AUG2711-T4615.99"
T0 = 1_787_838_983_996_000_000
FRAME = (b'{"type":"orderbook_delta","sid":1,"seq":%d,"msg":{"market_ticker":"KXGOLDH-26AUG2711-T4615.99",'
         b'"market_id":"9b0f6b43-5b68-4f9f-9f02-9a2d1d6f1d2f","price_dollars":"0.5600","delta_fp":"-54.00",'
         b'"side":"yes","ts":"2026-08-27T11:00:00.123456Z"}}')


def make_raw(n: int) -> list[AnyRecord]:
    return [RawFrame(T0 + i * 1000, "orderbook_delta", FRAME % (i + 1), 7, 1, i + 1, TICKER, i + 1) for i in range(n)]


def make_records(n: int) -> list[AnyRecord]:
    records: list[AnyRecord] = []
    for i in range(n):
        price = Decimal(100 + i % 9800).scaleb(-4)
        received = T0 + i * 1000
        if i % 20 == 0:
            levels = tuple(Level(Decimal(k + 1).scaleb(-2), Decimal(k * 100 + 1)) for k in range(10))
            records.append(OrderBookUpdate(TICKER, "snapshot", levels, levels, received, None, 1, i + 1, 7))
        elif i % 4 == 0:
            records.append(Trade(TICKER, price, Decimal("136.00"), "sell", f"trade-{i}", received,
                                 received - 500, 11, i + 1, 7))
        else:
            levels = (Level(price, Decimal(i % 500)),)
            records.append(OrderBookUpdate(TICKER, "change", levels, (), received, received - 500, 1, i + 1, 7))
    return records


def as_dict(record: AnyRecord) -> dict[str, object]:
    """The record as the JSON a gateway would send (decimal strings), for the baseline."""
    if isinstance(record, Trade):
        return {"type": "trade", "ticker": record.ticker, "yes_price": str(record.yes_price),
                "count": str(record.count), "side": record.taker_side, "trade_id": record.trade_id,
                "ts": record.exchange_ns, "received_ns": record.received_ns, "sid": record.sid, "seq": record.seq}
    assert isinstance(record, OrderBookUpdate)
    return {"type": "orderbook", "kind": record.kind, "ticker": record.ticker,
            "bids": [[str(lv.price), str(lv.size)] for lv in record.bids],
            "asks": [[str(lv.price), str(lv.size)] for lv in record.asks],
            "ts": record.exchange_ns, "received_ns": record.received_ns, "sid": record.sid, "seq": record.seq}


def kinds(records: list[AnyRecord]) -> dict[str, list[AnyRecord]]:
    groups: dict[str, list[AnyRecord]] = {"trade": [], "book change, 1 level": [], "book snapshot, 10+10 levels": []}
    for record in records:
        if isinstance(record, Trade):
            groups["trade"].append(record)
        elif isinstance(record, OrderBookUpdate):
            groups["book change, 1 level" if record.kind == "change" else "book snapshot, 10+10 levels"].append(
                record)
    return groups


class Bench:
    def __init__(self, batch: int, repeat: int) -> None:
        self.batch, self.repeat = batch, repeat
        self.rows: list[tuple[str, float, float | None]] = []

    def rate(self, n: int, run: Callable[[], object]) -> float:
        best = float("inf")
        for _ in range(self.repeat):
            start = time.process_time()
            run()
            best = min(best, time.process_time() - start)
        return n / best

    def compare(self, name: str, records: Sequence[AnyRecord]) -> None:
        """Encode, decode and both, fast against reference, on batches of ``records``."""
        batches = [records[i:i + self.batch] for i in range(0, len(records), self.batch)]
        fast = [codec.encode_batch(b) for b in batches]
        assert [codec.decode_batch(e) for e in fast] == batches
        n = len(records)
        pairs = {
            "encode": (lambda: [codec.encode_batch(b) for b in batches],
                       lambda: [codec.reference_encode_batch(b) for b in batches]),
            "decode": (lambda: [codec.decode_batch(e) for e in fast],
                       lambda: [codec.reference_decode_batch(e) for e in fast]),
            "encode+decode": (lambda: [codec.decode_batch(codec.encode_batch(b)) for b in batches],
                              lambda: [codec.reference_decode_batch(codec.reference_encode_batch(b)) for b in batches]),
        }
        for what, (fast_run, reference_run) in pairs.items():
            self.rows.append((f"{name}: {what}", self.rate(n, fast_run), self.rate(n, reference_run)))

    def pipeline(self, raw: Sequence[AnyRecord], records: Sequence[AnyRecord]) -> None:
        """The codec work of one frame through the capture path: the connector encodes it into a raw
        batch, the normalizer decodes that, encodes ~1 normalized record into a batch and on its own
        for the public per-ticker subject (``encode_batch_and_structs``; the reference path encodes
        twice), and one consumer decodes the batch (the raw archiver, the
        snapshotter and the gateway each add a decode)."""
        size = self.batch
        raw_batches = [raw[i:i + size] for i in range(0, len(raw), size)]
        batches = [records[i:i + size] for i in range(0, len(records), size)]

        def reference_both(records: Sequence[AnyRecord]) -> tuple[bytes, list[bytes]]:
            return codec.reference_encode_batch(records), [codec.reference_encode_struct(r) for r in records]

        def run(encode: Callable[[Sequence[AnyRecord]], bytes], decode: Callable[[bytes], list[AnyRecord]],
                encode_both: Callable[[Sequence[AnyRecord]], tuple[bytes, list[bytes]]]) -> Callable[[], None]:
            def frames() -> None:
                for frames_batch, normalized in zip(raw_batches, batches, strict=True):
                    decode(encode(frames_batch))
                    decode(encode_both(normalized)[0])
            return frames

        self.rows.append(("pipeline: frames/s of codec work per frame (see Bench.pipeline)", self.rate(
            len(raw), run(codec.encode_batch, codec.decode_batch, codec.encode_batch_and_structs)), self.rate(
            len(raw), run(codec.reference_encode_batch, codec.reference_decode_batch, reference_both))))

    def single(self, name: str, n: int, run: Callable[[], object], reference: Callable[[], object] | None) -> None:
        self.rows.append((name, self.rate(n, run), None if reference is None else self.rate(n, reference)))

    def print(self) -> None:
        width = max(len(name) for name, _, _ in self.rows)
        print(f"{'records per CPU second, best of ' + str(self.repeat):<{width}}  {'fast':>10}  {'pycapnp':>10}  ratio")
        for name, fast, reference in self.rows:
            if reference is None:
                print(f"{name:<{width}}  {fast:>10,.0f}")
            else:
                print(f"{name:<{width}}  {fast:>10,.0f}  {reference:>10,.0f}  {fast / reference:5.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bench = Bench(args.batch, args.repeat)
    raw, records = make_raw(args.records), make_records(args.records)
    codec.decode(codec.encode(records[0]))  # load the schema outside the timing
    print(f"{args.records} records, batches of {args.batch}; raw frames of {len(FRAME % 1)} bytes")

    bench.compare("raw frames", raw)
    bench.compare("normalized mix", records)
    for kind, group in kinds(records).items():
        bench.compare(f"  {kind}", group)
    bench.pipeline(raw, records)
    encoded = [codec.encode_batch(records[i:i + args.batch]) for i in range(0, len(records), args.batch)]
    bench.single("normalized mix: split_batch (archivers)", len(records),
                 lambda: [codec.split_batch(e) for e in encoded],
                 lambda: [codec.reference_split_batch(e) for e in encoded])
    bench.single("normalized mix: encode_struct (public subjects)", len(records),
                 lambda: [codec.encode_struct(r) for r in records],
                 lambda: [codec.reference_encode_struct(r) for r in records])
    bench.single("normalized mix: encode+decode, 1 record/message", len(records),
                 lambda: [codec.decode(codec.encode(r)) for r in records],
                 lambda: [codec.reference_decode(codec.reference_encode(r)) for r in records])
    dicts = [as_dict(r) for r in records]
    encoder, decoder = msgspec.json.Encoder(), msgspec.json.Decoder()
    bench.single("json dumps+loads, 1 dict/message", len(dicts),
                 lambda: [json.loads(json.dumps(d)) for d in dicts], None)
    bench.single("msgspec encode+decode, 1 dict/message", len(dicts),
                 lambda: [decoder.decode(encoder.encode(d)) for d in dicts], None)
    bench.single("record construction (validation)", len(records), lambda: make_records(len(records)), None)
    bench.print()


if __name__ == "__main__":
    main()
