"""Reading the archive: ticker-days from manifests alone, records of a ticker-day, raw frames.

:meth:`ArchiveReader.ticker_days` lists what the archive holds without opening a data file. It lists
the keys under the type-day directories and reads each type-day manifest (one entry per ticker); a
ticker whose own manifest is missing from that index, or was written after it (two writers raced on
the index), is read from its ticker manifest; a data file without any manifest (a writer died between
the two uploads) is reported ``pending`` with unknown counts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from ssmd import codec, names
from ssmd.archive import manifest as mf
from ssmd.archive import zfile
from ssmd.archive.normalized import TYPE_NAMES
from ssmd.archive.raw import FILE_TYPES, RawLine, decode_line
from ssmd.records import AnyRecord
from ssmd.store import ObjectInfo, ObjectNotFound, ObjectStore

_DATA = "data.capnp.zst"


@dataclass(frozen=True, slots=True)
class TickerDay:
    """One ticker-day of one type, as its manifests describe it."""

    data_type: str
    date: dt.date
    ticker: str
    status: str
    condition: str
    quality_score: float | None
    record_count: int | None
    byte_size: int | None
    gap_count: int | None
    last_modified: str | None

    @property
    def complete(self) -> bool:
        return self.status == "complete"


class ArchiveReader:
    def __init__(self, store: ObjectStore, *, env: str, feed: str = "kalshi", concurrency: int = 32) -> None:
        self.store = store
        self.env, self.feed = names.validate_env(env), names.validate_feed(feed)
        self._sem = asyncio.Semaphore(concurrency)

    async def _get(self, key: str) -> bytes:
        async with self._sem:
            return await self.store.get(key)

    async def _manifest(self, key: str) -> dict[str, Any] | None:
        try:
            return mf.loads(await self._get(key), key)
        except ObjectNotFound:
            return None

    # -- normalized ---------------------------------------------------------------------------------

    async def ticker_days(
        self, *, date: dt.date | None = None, data_type: str | None = None, ticker: str | None = None
    ) -> list[TickerDay]:
        """Every archived ticker-day matching the filters, sorted by (type, date, ticker)."""
        types = [names.validate_type(data_type)] if data_type else list(TYPE_NAMES)
        found = await asyncio.gather(*(self._type_days(t, date, ticker) for t in types))
        return sorted((td for part in found for td in part), key=lambda td: (td.data_type, td.date, td.ticker))

    async def _type_days(self, data_type: str, date: dt.date | None, ticker: str | None) -> list[TickerDay]:
        prefix = names.normalized_prefix(self.env, self.feed, data_type, date)
        dirs: dict[dt.date, dict[str, dict[str, ObjectInfo]]] = {}
        indexes: dict[dt.date, ObjectInfo] = {}
        base = len(names.normalized_prefix(self.env, self.feed, data_type))
        async for info in self.store.list(prefix):
            parts = info.key[base:].split("/")  # YYYY MM DD [ticker] name
            try:
                day = dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
            except (ValueError, IndexError):
                continue
            if len(parts) == 4 and parts[3] == names.MANIFEST:
                indexes[day] = info
            elif len(parts) == 5 and (ticker is None or parts[3] == ticker):
                dirs.setdefault(day, {}).setdefault(parts[3], {})[parts[4]] = info
        out = await asyncio.gather(*(self._day(data_type, d, dirs.get(d, {}), indexes.get(d)) for d in sorted(
            set(dirs) | (set(indexes) if ticker is None else set()))))
        return [td for part in out for td in part]

    async def _day(
        self, data_type: str, day: dt.date, tickers: dict[str, dict[str, ObjectInfo]], index: ObjectInfo | None
    ) -> list[TickerDay]:
        entries: dict[str, Any] = {}
        if index is not None:
            m = await self._manifest(index.key)
            entries = dict(m.get("entries", {})) if m else {}
        stale = {}
        for ticker, files in tickers.items():
            own = files.get(names.MANIFEST)
            if own is not None and (ticker not in entries or index is None or own.last_modified > index.last_modified):
                stale[ticker] = own.key
        fresh = await asyncio.gather(*(self._manifest(key) for key in stale.values()))
        for ticker, m in zip(stale, fresh, strict=True):
            entries[ticker] = mf.entry_of(m) if m else None
        return [_ticker_day(data_type, day, t, entries.get(t)) for t in sorted(tickers)]

    async def records(self, data_type: str, ticker: str, date: dt.date) -> list[AnyRecord]:
        """The records of one ticker-day, in the order they were archived (ObjectNotFound if none)."""
        key = names.normalized_key(self.env, self.feed, data_type, date, ticker)
        _meta, content = zfile.read(await self._get(key), key)
        return codec.decode_stream(content)

    async def manifest(self, data_type: str, date: dt.date, ticker: str | None = None) -> dict[str, Any] | None:
        """A ticker-day's manifest, or (``ticker=None``) its type-day manifest; None if absent."""
        return await self._manifest(names.normalized_manifest_key(self.env, self.feed, data_type, date, ticker))

    # -- raw ----------------------------------------------------------------------------------------

    async def raw_manifest(self, date: dt.date) -> dict[str, Any] | None:
        return await self._manifest(names.raw_manifest_key(self.env, self.feed, date))

    async def raw_files(self, date: dt.date, *, file_type: str | None = None, hour: int | None = None) -> list[str]:
        """Keys of a day's raw files, optionally one type and/or one hour, by hour then :data:`FILE_TYPES` order."""
        types = [file_type] if file_type else list(FILE_TYPES)
        hours = [hour] if hour is not None else list(range(24))
        wanted = {names.raw_key(self.env, self.feed, t, date, h): (h, i) for i, t in enumerate(types) for h in hours}
        keys = [i.key async for i in self.store.list(names.raw_prefix(self.env, self.feed, date)) if i.key in wanted]
        return sorted(keys, key=wanted.__getitem__)

    async def raw_lines(
        self, date: dt.date, *, file_type: str | None = None, hour: int | None = None
    ) -> AsyncIterator[RawLine]:
        """The archived frames of a day (or hour, or type), file by file in (hour, type) order."""
        for key in await self.raw_files(date, file_type=file_type, hour=hour):
            for line in _lines(await self._get(key), key):
                yield decode_line(line, key)


def _lines(blob: bytes, key: str) -> Iterable[bytes]:
    _meta, content = zfile.read(blob, key)
    lines = content.split(b"\n")  # not splitlines(): a verbatim frame may hold a \r as JSON whitespace
    return lines[:-1] if lines and not lines[-1] else lines


def _ticker_day(data_type: str, day: dt.date, ticker: str, entry: dict[str, Any] | None) -> TickerDay:
    if entry is None:
        return TickerDay(data_type, day, ticker, "unknown", "pending", None, None, None, None, None)
    return TickerDay(
        data_type, day, ticker, str(entry["status"]), str(entry["condition"]), float(entry["quality_score"]),
        int(entry["record_count"]), int(entry["byte_size"]), int(entry.get("gap_count") or 0),
        entry.get("last_modified"),
    )
