"""``ssmd archive ls|cat|cat-raw``: read the archive (manifests, normalized records, raw frames)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import sys
from typing import Any

import msgspec

from ssmd import settings as settings_mod
from ssmd.commands import argtypes

HELP = "read the archive: 'ls' ticker-days with condition and score, 'cat' records, 'cat-raw' frames, 'rebuild'"

_STORE_SETTINGS = ["env", "store_url", "s3_endpoint_url", "s3_region", "s3_access_key_id", "s3_secret_access_key",
                   "log_level"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="archive_command", metavar="ACTION", required=True)
    ls = sub.add_parser("ls", help="list ticker-days with status, condition and quality score (from manifests)",
                        description="List archived ticker-days from manifests alone (no data file is read). "
                        "With --raw, list raw archive days instead.")
    ls.add_argument("--date", type=argtypes.date, help="only this day (YYYY-MM-DD)")
    ls.add_argument("--type", dest="data_type", help="only this type: trade, orderbook, status, gap")
    ls.add_argument("--ticker", help="only this ticker")
    ls.add_argument("--raw", action="store_true", help="list raw archive days and their hour files")
    ls.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    cat = sub.add_parser("cat", help="print a ticker-day's records as JSON lines (prices as strings)")
    cat.add_argument("data_type", metavar="TYPE", help="trade, orderbook, status or gap")
    cat.add_argument("ticker", metavar="TICKER")
    cat.add_argument("date", metavar="DATE", type=argtypes.date, help="YYYY-MM-DD")
    raw = sub.add_parser("cat-raw", help="print a day's raw archive lines (or, with --data, the original frames)")
    raw.add_argument("date", metavar="DATE", type=argtypes.date, help="YYYY-MM-DD")
    raw.add_argument("--type", dest="file_type", help="only this file type: orderbook, trades, ticker, lifecycle, "
                     "control")
    raw.add_argument("--hour", type=int, choices=range(24), metavar="HH", help="only this hour (0-23, UTC)")
    raw.add_argument("--data", action="store_true", help="print only each original frame, byte for byte")
    rebuild = sub.add_parser("rebuild", help="re-normalize a day from the raw archive (after a wire-format change)",
                             description="Read a day's raw archive, normalize it again with this version's parsers, "
                             "and replace that day's normalized archive and manifests.")
    rebuild.add_argument("date", metavar="DATE", type=argtypes.date, help="YYYY-MM-DD")
    rebuild.add_argument("--dry-run", action="store_true", help="count what would be rebuilt; write nothing")
    for p in (ls, cat, raw, rebuild):
        settings_mod.add_arguments(p, only=_STORE_SETTINGS)


def run(args: argparse.Namespace) -> int:
    settings = settings_mod.from_args(args)
    if args.archive_command == "rebuild":
        return asyncio.run(_rebuild(settings, args))
    action = {"ls": _ls, "cat": _cat, "cat-raw": _cat_raw}[args.archive_command]
    return asyncio.run(_with_reader(settings, action, args))


async def _rebuild(settings: settings_mod.Settings, args: argparse.Namespace) -> int:
    from ssmd.archive.rebuild import rebuild_day
    from ssmd.store import open_store

    async with open_store(settings) as store:
        result = await rebuild_day(store, settings.env, args.date, dry_run=args.dry_run)
    verb = "would write" if args.dry_run else "wrote"
    print(f"{args.date}: {result.frames} raw frames ({result.malformed} malformed) -> {verb} {result.records} records; "
          f"replaced {result.deleted} objects")
    return 0


async def _with_reader(settings: settings_mod.Settings, action: Any, args: argparse.Namespace) -> int:
    from ssmd.archive import ArchiveReader
    from ssmd.store import open_store

    async with open_store(settings) as store:
        result: int = await action(ArchiveReader(store, env=settings.env), args)
        return result


async def _ls(reader: Any, args: argparse.Namespace) -> int:
    if args.raw:
        return await _ls_raw(reader, args)
    days = await reader.ticker_days(date=args.date, data_type=args.data_type, ticker=args.ticker)
    if args.json:
        for td in days:
            out.write(msgspec.json.encode(dataclasses.asdict(td)) + b"\n")
        return 0
    rows: list[tuple[str, ...]] = [
        ("TYPE", "DATE", "TICKER", "STATUS", "CONDITION", "SCORE", "RECORDS", "BYTES", "GAPS")]
    for td in days:
        rows.append((td.data_type, td.date.isoformat(), td.ticker, td.status, td.condition,
                     "-" if td.quality_score is None else f"{td.quality_score:.4f}", _n(td.record_count),
                     _n(td.byte_size), _n(td.gap_count)))
    _table(rows)
    return 0


async def _ls_raw(reader: Any, args: argparse.Namespace) -> int:
    from ssmd import names

    prefix = names.raw_prefix(reader.env, reader.feed)
    dates = sorted({dt.date(*map(int, i.key[len(prefix):].split("/")[:3])) async for i in reader.store.list(prefix)
                    if i.key.endswith("/" + names.MANIFEST)})
    rows: list[tuple[str, ...]] = [("DATE", "FILE", "STATUS", "CONDITION", "SCORE", "FRAMES", "BYTES", "GAPS")]
    for date in dates:
        if args.date is not None and date != args.date:
            continue
        m = await reader.raw_manifest(date)
        if m is None:
            continue
        if args.json:
            out.write(msgspec.json.encode(m) + b"\n")
            continue
        rows.append((m["date"], "*", m["status"], m["condition"], f"{m['quality_score']:.4f}", _n(m["record_count"]),
                     _n(m["byte_size"]), _n(len(m["gaps"]))))
        for name, e in m.get("entries", {}).items():
            rows.append(("", name, e["status"], e["condition"], "", _n(e["record_count"]), _n(e["byte_size"]), ""))
    if not args.json:
        _table(rows)
    return 0


async def _cat(reader: Any, args: argparse.Namespace) -> int:
    from ssmd.store import ObjectNotFound

    try:
        records = await reader.records(args.data_type, args.ticker, args.date)
    except ObjectNotFound:
        print(f"ssmd: no {args.data_type} data for {args.ticker} on {args.date}", file=sys.stderr)
        return 1
    for rec in records:
        out.write(record_json(rec) + b"\n")
    return 0


def record_json(rec: Any) -> bytes:
    """A record as one JSON object: ``{"record": "Trade", ...fields}``; Decimals as exact strings."""
    return msgspec.json.encode({"record": type(rec).__name__, **dataclasses.asdict(rec)})


async def _cat_raw(reader: Any, args: argparse.Namespace) -> int:
    async for line in reader.raw_lines(args.date, file_type=args.file_type, hour=args.hour):
        out.write((line.data if args.data else line.line) + b"\n")
    return 0


class _Out:
    """Bytes to stdout (frames are bytes, and need not be UTF-8)."""

    def write(self, data: bytes) -> None:
        sys.stdout.buffer.write(data)


out = _Out()


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip().encode() + b"\n")
