"""The normalized archive writer: records -> ``ssmd-normalized/{env}/{feed}/v1/{type}/YYYY/MM/DD/{ticker}/``.

Each ticker-day directory holds ``data.capnp.zst``, the zstd of a stream of Cap'n Proto ``Record``
messages (``zstd -d < data.capnp.zst | capnp decode schemas/ssmd.capnp Record``), and ``manifest.json``
(:func:`ssmd.archive.manifest.file_manifest`). Each type-day directory holds a ``manifest.json`` with an
entry per ticker (the index :class:`~ssmd.archive.reader.ArchiveReader` lists). Types: ``trade``,
``orderbook``, ``status`` and ``gap`` (:data:`TYPES`). A record's day is the UTC day of its receive
time. The gaps of a ticker-day (its ``gap`` file, last record per gap wins) appear in the manifest of
every type of that ticker-day and set their quality scores. A gap with ticker ``""`` (a whole
connection) is recorded for every ticker-day of its date open in this writer.

Files are spooled locally per ticker-day and uploaded whole: at each :meth:`NormalizedArchiver.flush`
(status ``partial``) and, once the day has ended plus ``close_after`` seconds, compacted with status
``complete``. The input contract is the raw writer's (:mod:`ssmd.archive.raw`): one :meth:`add` per
input event with its ``(partition, offset)``, commit only positions returned by :meth:`flush`, re-deliver
from the last commit after a crash; a ticker must have one writer at a time (its partition's owner).
Type-day manifests are read, merged and rewritten by each writer; if two writers race on one, an entry
may lag, and the reader then trusts the newer ticker manifest.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssmd import __version__, codec, names
from ssmd.archive import manifest as mf
from ssmd.archive import quality
from ssmd.archive.busgap import BusGaps
from ssmd.archive.fileset import FileSet, run_all
from ssmd.archive.spool import COMPLETE, Position, SpoolFile
from ssmd.archive.timefmt import NS_PER_DAY, day_of, day_start_ns, iso_ns
from ssmd.errors import InvalidNameError
from ssmd.records import AnyRecord, Gap, MarketStatus, OrderBookUpdate, Trade
from ssmd.store import ObjectStore

log = logging.getLogger("ssmd.archive")

SCHEMA_VERSION = names.NORMALIZED_VERSION
TYPES: dict[type[Any], str] = {Trade: "trade", OrderBookUpdate: "orderbook", MarketStatus: "status", Gap: "gap"}
TYPE_NAMES = tuple(TYPES.values())

_Groups = dict[tuple[str, int, str], tuple[list[bytes], list[int], list[Gap]]]
"""(ticker, day number, type) -> (encoded records, receive times, gap records) of one event."""


@dataclass
class _TickerDay:
    ticker: str
    date: dt.date
    files: dict[str, SpoolFile]
    gaps: dict[quality.GapKey, Gap]
    stale: set[str] = field(default_factory=set)
    """Types whose manifest must be rewritten."""


class NormalizedArchiver:
    """Writes normalized records into ticker-day files and manifests; see the module docstring."""

    def __init__(
        self, store: ObjectStore, *, env: str, spool_dir: str | Path, feed: str = "kalshi", level: int = 3,
        close_after: float = 60.0, connector_version: str = __version__,
        clock: Callable[[], int] = time.time_ns, concurrency: int = 16,
    ) -> None:
        self.env, self.feed = names.validate_env(env), names.validate_feed(feed)
        self.close_after_ns = int(close_after * 1e9)
        self.connector_version = connector_version
        self.clock = clock
        self._files = FileSet(store, spool_dir, level=level, clock=clock, concurrency=concurrency)
        self._days: dict[tuple[str, dt.date], _TickerDay] = {}
        self._added: dict[int, int] = {}
        self._bad_tickers: set[str] = set()
        self._bus = BusGaps()
        self.rejected = 0
        """Records dropped because their ticker cannot be an object key."""
        self._flush_lock = asyncio.Lock()
        self._index_dirty: set[tuple[str, dt.date]] = set()
        self._entries: dict[tuple[str, dt.date], dict[str, dict[str, Any]]] = {}

    async def add(self, records: Iterable[AnyRecord], position: Position) -> None:
        """Archive one input event's records (RawFrames are not accepted: they go to the raw writer)."""
        groups: _Groups = {}
        encode = codec.encode
        for rec in records:
            kind = TYPES.get(type(rec))
            if kind is None:
                msg = f"the normalized archive takes {', '.join(TYPE_NAMES)} records, not {type(rec).__name__}"
                raise TypeError(msg)
            if kind == "gap":
                self._group_gap(groups, rec)  # type: ignore[arg-type]
                continue
            key = (rec.ticker, rec.received_ns // NS_PER_DAY, kind)
            group = groups.get(key)
            if group is None:
                group = groups[key] = ([], [], [])
            group[0].append(encode(rec))
            group[1].append(rec.received_ns)
        await self._apply(groups, position)

    async def add_encoded(self, messages: Iterable[codec.RecordMessage], position: Position, received_ns: int) -> None:
        """Like :meth:`add`, for records already encoded as ``Record`` messages (:func:`ssmd.codec.split_batch`).

        Nothing is decoded except gaps, so this is the archiver's fast path for ``Batch`` events. Every
        record is filed and timed by ``received_ns``, the receive time of the batch (batches span a few
        ms of receive time, so a batch that straddles midnight files its records under the first day).
        """
        groups: _Groups = {}
        day = received_ns // NS_PER_DAY
        for m in messages:
            kind = TYPES.get(m.kind)
            if kind is None:
                msg = f"the normalized archive takes {', '.join(TYPE_NAMES)} records, not {m.kind.__name__}"
                raise TypeError(msg)
            if kind == "gap":
                self._group_gap(groups, codec.decode(m.message))  # type: ignore[arg-type]
                continue
            group = groups.get((m.ticker, day, kind))
            if group is None:
                group = groups[m.ticker, day, kind] = ([], [], [])
            group[0].append(m.message)
            group[1].append(received_ns)
        await self._apply(groups, position)

    def _group_gap(self, groups: _Groups, gap: Gap) -> None:
        targets = [gap] if gap.ticker else self._connection_gap(gap, day_of(gap.received_ns))
        for g in targets:
            group = groups.setdefault((g.ticker, g.received_ns // NS_PER_DAY, "gap"), ([], [], []))
            group[0].append(codec.encode(g))
            group[1].append(g.received_ns)
            group[2].append(g)

    async def _apply(self, groups: _Groups, position: Position) -> None:
        days = self._days
        dates = {d: day_of(d * NS_PER_DAY) for d in {d for _, d, _ in groups}}
        missing = {(t, dates[d]) for t, d, _ in groups if (t, dates[d]) not in days}
        if missing:  # load concurrently; most events touch only ticker-days already open
            await asyncio.gather(*(self._ticker_day(t, d) for t, d in missing if self._valid(t)))
        for (ticker, day, kind), (msgs, times, gaps) in groups.items():
            td = days.get((ticker, dates[day]))
            if td is None:
                self.rejected += len(msgs)  # a ticker that cannot be a key (see _valid)
                continue
            f = td.files[kind]
            if not f.accepts(position):
                continue
            f.append(b"".join(msgs), len(msgs), min(times), max(times), position)
            td.stale.add(kind)
            if gaps and any([quality.merge_gap(td.gaps, g) for g in gaps]):
                td.stale.update(k for k, tf in td.files.items() if tf.records)
        partition, offset = position
        self._added[partition] = max(offset, self._added.get(partition, -1))

    def _valid(self, ticker: str) -> bool:
        # A ticker that cannot be a path component ("/", spaces) has no place in the key layout: its
        # records are counted in ``rejected`` and dropped (the raw archive still has its frames),
        # rather than failing the agent on every re-delivery.
        try:
            names.validate_symbol(ticker)
        except InvalidNameError:
            if ticker not in self._bad_tickers:
                self._bad_tickers.add(ticker)
                log.error("normalized archive: ticker %r cannot be an object key; its records are dropped", ticker)
            return False
        return True

    def bus_gap(self, first: int, end: int, stream: str, at_ns: int) -> Gap | None:
        """Normalized stream sequences ``first..end-1`` were removed (retention, a purge) before they were read.

        Their records are not in the archive. Returns the ``bus`` gap (:mod:`ssmd.archive.busgap`) to
        :meth:`add` with the records read after the removal (``at_ns``: the first one's receive time), or
        None if this removal is already recorded. Its ticker is ``""``: it is recorded for every
        ticker-day of its date open in this writer, as the removed records could be of any of them.
        """
        latest = max((f.last_ns for td in self._days.values() for f in td.files.values() if f.last_ns is not None),
                     default=None)  # fmt: skip
        return self._bus.report(first, end, stream, at_ns, latest)

    def _connection_gap(self, gap: Gap, date: dt.date) -> list[Gap]:
        return [dataclasses.replace(gap, ticker=t) for (t, d) in self._days if d == date]

    async def flush(self) -> dict[int, int]:
        """Upload changed files, complete ended days, rewrite manifests; return durable positions."""
        async with self._flush_lock:  # one flush at a time: a second waits, then finds less to do
            return await self._flush()

    async def _flush(self) -> dict[int, int]:
        positions = dict(self._added)
        now = self.clock()
        closing = [td for td in self._days.values() if self._closed(td.date, now)]
        uploads = []
        for td in self._days.values():
            closed = td in closing
            for kind, f in td.files.items():
                if f.dirty or (closed and f.records and f.status != COMPLETE):
                    uploads.append(self._files.upload(f, complete=closed))
                    td.stale.add(kind)
        await run_all(uploads)
        await run_all(self._write_manifests(td, now) for td in self._days.values() if td.stale)
        await run_all(self._write_index(kind, date, now) for kind, date in sorted(self._index_dirty))
        for td in closing:
            for f in td.files.values():
                self._files.drop(f.key)
            del self._days[td.ticker, td.date]
        return positions

    async def release(self, owns: Callable[[str], bool], partitions: Iterable[int]) -> int:
        """Give up the ticker-days whose tickers ``owns`` rejects: their ``partitions`` moved to another writer.

        They are forgotten without an upload, after any flush in progress: their records not yet uploaded
        belong to input events never committed, which the new owner reads again. Without this, this writer
        would go on uploading them, and at the day's end complete them with only the records it had,
        over the new owner's files. Returns how many ticker-days were given up.
        """
        async with self._flush_lock:
            gone = [td for td in self._days.values() if not owns(td.ticker)]
            for td in gone:
                for f in td.files.values():
                    self._files.drop(f.key)
                del self._days[td.ticker, td.date]
            for p in partitions:
                self._added.pop(p, None)
            return len(gone)

    async def close(self) -> dict[int, int]:
        """Graceful stop: upload everything pending (open days stay partial)."""
        return await self.flush()

    async def resume(
        self, dates: Iterable[dt.date] | None = None, owns: Callable[[str], bool] | None = None
    ) -> None:
        """Take over the unfinished ticker-days of ``dates`` (default: yesterday and today, by the clock).

        Call once at start, before the first :meth:`add`, with ``owns(ticker)`` true for the tickers of
        this writer's partitions (default: all). A ticker-day whose writer died is otherwise only
        completed if re-delivered input touches it. Loads every owned ticker-day of those dates that a
        type-day manifest does not list as complete (a day's data files are read once).
        """
        if dates is None:
            today = day_of(self.clock())
            dates = (today - dt.timedelta(days=1), today)
        found = await asyncio.gather(*(self._unfinished(kind, date) for date in dates for kind in TYPE_NAMES))
        wanted = {(t, d) for part in found for t, d in part if owns is None or owns(t)}
        await asyncio.gather(*(self._ticker_day(t, d) for t, d in sorted(wanted)))

    async def _unfinished(self, kind: str, date: dt.date) -> set[tuple[str, dt.date]]:
        prefix = names.normalized_prefix(self.env, self.feed, kind, date)
        tickers = {i.key[len(prefix):].split("/")[0] async for i in self._files.store.list(prefix)
                   if i.key.endswith("/data.capnp.zst")}
        if not tickers:
            return set()
        index = await self._files.get_json(names.normalized_manifest_key(self.env, self.feed, kind, date))
        entries = index.get("entries", {}) if index else {}
        return {(t, date) for t in tickers if entries.get(t, {}).get("status") != COMPLETE}

    def _closed(self, date: dt.date, now: int) -> bool:
        return day_start_ns(date) + NS_PER_DAY + self.close_after_ns <= now

    async def _ticker_day(self, ticker: str, date: dt.date) -> _TickerDay:
        td = self._days.get((ticker, date))
        if td is None:
            keys = [names.normalized_key(self.env, self.feed, kind, date, ticker) for kind in TYPE_NAMES]
            files = dict(zip(TYPE_NAMES, await self._files.open_many(keys), strict=True))
            td = self._days.get((ticker, date))  # another add may have loaded it meanwhile
            if td is None:
                gaps: dict[quality.GapKey, Gap] = {}
                if files["gap"].records:
                    content = await asyncio.to_thread(files["gap"].content)
                    for g in codec.decode_stream(content):
                        quality.merge_gap(gaps, g)  # type: ignore[arg-type]
                # Files loaded after a crash get their manifests rewritten, in case the crash came
                # between a data upload and its manifest.
                td = _TickerDay(ticker, date, files, gaps, {k for k, f in files.items() if f.records})
                self._days[ticker, date] = td
        return td

    async def _write_manifests(self, td: _TickerDay, now: int) -> None:
        start = day_start_ns(td.date)
        end = start + NS_PER_DAY if self._closed(td.date, now) else min(now, start + NS_PER_DAY)
        gaps = list(td.gaps.values())
        writes = []
        for kind in sorted(td.stale):
            f = td.files[kind]
            if not f.records:
                continue
            m = mf.file_manifest(
                f, feed=self.feed, date=td.date.isoformat(), data_type=kind, schema_version=SCHEMA_VERSION,
                gaps=gaps, window=(start, end), connector_version=self.connector_version, ticker=td.ticker,
            )
            key = names.normalized_manifest_key(self.env, self.feed, kind, td.date, td.ticker)
            writes.append(self._files.put_json(key, m))
            self._entries.setdefault((kind, td.date), {})[td.ticker] = mf.entry_of(m)
            self._index_dirty.add((kind, td.date))
        await run_all(writes)
        td.stale.clear()

    async def _write_index(self, kind: str, date: dt.date, now: int) -> None:
        key = names.normalized_manifest_key(self.env, self.feed, kind, date)
        old = await self._files.get_json(key)
        entries = dict(old.get("entries", {})) if old else {}
        mine = self._entries.get((kind, date), {})
        entries.update(mine)
        manifest = mf.directory_manifest(
            entries, feed=self.feed, date=date.isoformat(), data_type=kind, schema_version=SCHEMA_VERSION,
            connector_version=self.connector_version, created_at=str(old["created_at"]) if old else iso_ns(now),
            now_ns=now, closed=self._closed(date, now),
        )
        await self._files.put_json(key, manifest)
        if self._entries.get((kind, date)) is mine:  # keep entries a concurrent flush added meanwhile
            del self._entries[kind, date]
        self._index_dirty.discard((kind, date))
