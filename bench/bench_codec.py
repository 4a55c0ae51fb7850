"""Encode+decode throughput of the ssmd Cap'n Proto codec against json and msgspec on the same data.

Run: ``python bench/bench_codec.py [--records N] [--batch B]``. It prints records/s for one record
per message (``encode``/``decode``), for batches (``encode_batch``/``decode_batch``), and for a JSON
round trip of the equivalent dicts with the standard library and with msgspec, and the ratios.
Records are a realistic mix: 70% one-level book changes, 25% trades, 5% ten-level snapshots.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from decimal import Decimal

import msgspec

from ssmd import codec
from ssmd.records import AnyRecord, Level, OrderBookUpdate, Trade

TICKER = "KXGOLDH-26AUG2711-T4615.99"
T0 = 1_787_838_983_996_000_000


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


def round_trip(batches: list[list[AnyRecord]]) -> None:
    for batch in batches:
        codec.decode_batch(codec.encode_batch(batch))


def kinds(records: list[AnyRecord]) -> dict[str, list[AnyRecord]]:
    groups: dict[str, list[AnyRecord]] = {"trade": [], "book change": [], "book snapshot (10+10 levels)": []}
    for record in records:
        if isinstance(record, Trade):
            groups["trade"].append(record)
        elif isinstance(record, OrderBookUpdate):
            groups["book change" if record.kind == "change" else "book snapshot (10+10 levels)"].append(record)
    return groups


def rate(n: int, run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    records = make_records(args.records)
    dicts = [as_dict(r) for r in records]
    batches = [records[i:i + args.batch] for i in range(0, len(records), args.batch)]
    codec.decode(codec.encode(records[0]))  # load the schema outside the timing
    encoded = [codec.encode_batch(b) for b in batches]
    encoder, decoder = msgspec.json.Encoder(), msgspec.json.Decoder()
    n = len(records)

    results = {
        "capnp encode+decode, 1 record/message": rate(n, lambda: [codec.decode(codec.encode(r)) for r in records]),
        f"capnp encode+decode, batches of {args.batch}": rate(
            n, lambda: [codec.decode_batch(codec.encode_batch(b)) for b in batches]),
        "capnp encode only, batched": rate(n, lambda: [codec.encode_batch(b) for b in batches]),
        "capnp split_batch (archiver path, no decode)": rate(n, lambda: [codec.split_batch(e) for e in encoded]),
        "json dumps+loads, 1 dict/message": rate(n, lambda: [json.loads(json.dumps(d)) for d in dicts]),
        "msgspec encode+decode, 1 dict/message": rate(n, lambda: [decoder.decode(encoder.encode(d)) for d in dicts]),
        "record construction (validation)": rate(n, lambda: make_records(n)),
    }
    for kind, group in kinds(records).items():
        group_batches = [group[i:i + args.batch] for i in range(0, len(group), args.batch)]
        results[f"  {kind} only, batched"] = rate(len(group), functools.partial(round_trip, group_batches))
    width = max(map(len, results))
    for name, value in results.items():
        print(f"{name:<{width}}  {value:>12,.0f} records/s")
    capnp_batch = results[f"capnp encode+decode, batches of {args.batch}"]
    print(f"ratio capnp(batched) / json    = {capnp_batch / results['json dumps+loads, 1 dict/message']:.2f}")
    print(f"ratio capnp(batched) / msgspec = {capnp_batch / results['msgspec encode+decode, 1 dict/message']:.2f}")
    print(f"ratio capnp(single) / json     = "
          f"{results['capnp encode+decode, 1 record/message'] / results['json dumps+loads, 1 dict/message']:.2f}")


if __name__ == "__main__":
    main()
