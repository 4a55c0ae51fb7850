"""The raw archive writer: exchange frames -> ``ssmd-raw/{env}/{feed}/YYYY/MM/DD/{type}-HH.jsonl.zst``.

Line format, one line per frame (``\\n``-terminated), keys in this order::

    {"ts":<receive ms>,"type":"<frame type>","ns":<receive ns>,"conn":<connection id>,"no":<frame no>,"data":<frame>}

``data`` is the original frame bytes, embedded verbatim (the line is built by concatenation, the frame
is never re-serialized), whenever the frame is one valid JSON value without a newline byte. Any other
frame (truncated, binary, multi-line) is kept as ``"enc":"base64","data":"<base64 of the bytes>"``
(``enc`` comes just before ``data``). ``conn``/``no`` are 0 when unknown. :func:`frame_bytes` recovers
the exact bytes of either form. ``type`` is the frame's own type (``orderbook_delta``); the file's
``{type}`` groups frame types (:func:`file_type`) so that a book's snapshots and deltas share a file, in
receive order. Files are rotated by the hour of receive time (UTC).

Contract with the agent that drives a :class:`RawArchiver` (at-least-once input):

- call :meth:`RawArchiver.add` once per input event with every item of the event and its position
  ``(partition, offset)``; re-delivered events must carry their original position;
- call :meth:`RawArchiver.flush` periodically; it uploads every changed file whole, then the day
  manifests, and returns the positions now durable. **Commit input offsets only after flush returns**,
  and only up to the positions it returned. After a crash, re-deliver from the last committed offset:
  events already in a file are recognised by the file's watermark and skipped, so every frame ends up
  in the archive exactly once and each manifest is rewritten to match its files;
- an hour file is completed (status ``complete``, compacted) by the first flush at least
  ``close_after`` seconds after its hour ended, and a day manifest likewise after the day ended;
- one writer per environment and day: two writers of the same hour file would overwrite each other.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from ssmd import __version__, names
from ssmd.archive import manifest as mf
from ssmd.archive import quality
from ssmd.archive.busgap import BusGaps
from ssmd.archive.fileset import FileSet, run_all
from ssmd.archive.spool import COMPLETE, Position, SpoolFile
from ssmd.archive.timefmt import NS_PER_DAY, NS_PER_HOUR, day_of, day_start_ns, hour_of, iso_ns
from ssmd.errors import DecodeError
from ssmd.records import Gap, RawFrame
from ssmd.store import ObjectStore

_FILE_TYPES = {
    "orderbook_snapshot": "orderbook", "orderbook_delta": "orderbook", "trade": "trades",
    "ticker": "ticker", "ticker_v2": "ticker", "market_lifecycle_v2": "lifecycle", "event_lifecycle": "lifecycle",
}
FILE_TYPES = ("orderbook", "trades", "ticker", "lifecycle", "control")
_DATA_KEY = b',"data":'
_is_json = msgspec.json.Decoder(msgspec.Raw).decode


def file_type(channel: str) -> str:
    """The raw file type of a frame type: orderbook, trades, ticker, lifecycle; control otherwise."""
    return _FILE_TYPES.get(channel, "control")


@functools.lru_cache(maxsize=256)
def _json_str(s: str) -> bytes:
    return msgspec.json.encode(s)


def encode_line(frame: RawFrame) -> bytes:
    """The archive line of ``frame`` (see the module docstring), newline included."""
    data = frame.data
    head = b'{"ts":%d,"type":%s,"ns":%d,"conn":%d,"no":%d' % (
        frame.received_ns // 1_000_000, _json_str(frame.channel), frame.received_ns,
        frame.connection_id or 0, frame.frame_no or 0,
    )
    if b"\n" not in data:
        try:
            _is_json(data)
        except msgspec.DecodeError:
            pass
        else:
            return b"".join((head, _DATA_KEY, data, b"}\n"))
    return b"".join((head, b',"enc":"base64"', _DATA_KEY, b'"', base64.b64encode(data), b'"}\n'))


@dataclass(frozen=True, slots=True)
class RawLine:
    """One archived frame as read back."""

    received_ns: int
    channel: str
    connection_id: int | None
    frame_no: int | None
    data: bytes
    line: bytes
    """The archive line as stored, without its newline."""

    def frame(self) -> RawFrame:
        return RawFrame(self.received_ns, self.channel, self.data, self.connection_id, frame_no=self.frame_no)


def decode_line(line: bytes, key: str = "") -> RawLine:
    """Parse an archive line; DecodeError if it was not written by :func:`encode_line`."""
    at = line.find(_DATA_KEY)
    try:
        if at < 0:
            raise ValueError("no data field")  # noqa: EM101 - wrapped just below
        head = msgspec.json.decode(line[:at] + b"}")
        line = line.rstrip(b"\n")
        data = line[at + len(_DATA_KEY) :]
        if not data.endswith(b"}"):
            raise ValueError("unterminated line")  # noqa: EM101
        data = data[:-1]
        if head.get("enc") == "base64":
            data = base64.b64decode(msgspec.json.decode(data), validate=True)
        return RawLine(int(head["ns"]), str(head["type"]), head["conn"] or None, head["no"] or None, data, line)
    except (ValueError, KeyError, TypeError, msgspec.DecodeError) as e:
        msg = f"bad raw archive line in {key!r}: {e}: {line[:80]!r}"
        raise DecodeError(msg) from e


def frame_bytes(line: bytes) -> bytes:
    """The original frame bytes of an archive line."""
    return decode_line(line).data


@dataclass
class _Day:
    date: dt.date
    entries: dict[str, dict[str, Any]]
    gaps: dict[quality.GapKey, Gap]
    created_at: str
    keys: set[str] = field(default_factory=set)
    dirty: bool = True


class RawArchiver:
    """Writes raw frames into hourly files and day manifests; see the module docstring."""

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
        self._days: dict[dt.date, _Day] = {}
        self._added: dict[int, int] = {}
        self._flush_lock = asyncio.Lock()
        self._keys: dict[tuple[str, int], str] = {}
        self._bus = BusGaps()

    async def add(self, items: Iterable[RawFrame | Gap], position: Position) -> None:
        """Archive one input event's frames (and gaps); see the module docstring for the contract."""
        groups: dict[str, tuple[list[bytes], list[int]]] = {}
        gaps: list[Gap] = []
        keys = self._keys
        for item in items:
            if isinstance(item, Gap):
                gaps.append(item)
                continue
            ns = item.received_ns
            slot = (item.channel, ns // NS_PER_HOUR)
            key = keys.get(slot)
            if key is None:  # names.raw_key validates every part: once per channel-hour, not per frame
                key = keys[slot] = names.raw_key(self.env, self.feed, file_type(item.channel), day_of(ns),
                                                 hour_of(ns))
            group = groups.get(key)
            if group is None:
                group = groups[key] = ([], [])
            group[0].append(encode_line(item))
            group[1].append(ns)
        for gap in gaps:
            day = await self._day(day_of(gap.received_ns))
            day.dirty |= quality.merge_gap(day.gaps, gap)
        files = await self._files.open_many(groups)
        for f in files:
            if f.accepts(position):
                lines, times = groups[f.key]
                f.append(b"".join(lines), len(lines), min(times), max(times), position)
            day = await self._day(_day_of_key(f))
            day.keys.add(f.key)
            day.dirty = True  # a file loaded after a crash gets its manifest entry rewritten
        partition, offset = position
        self._added[partition] = max(offset, self._added.get(partition, -1))

    async def bus_gap(self, first: int, end: int, stream: str, at_ns: int) -> None:
        """Raw stream sequences ``first..end-1`` were removed (retention, a purge) before they were read.

        Their frames are not in the archive: one ``bus`` gap per removal (:mod:`ssmd.archive.busgap`) in
        the manifest of the day of ``at_ns``, the receive time of the first frame read after it. Call it
        before adding the frames that follow the hole.
        """
        latest = max((f.last_ns for f in self._files.files.values() if f.last_ns is not None), default=None)
        gap = self._bus.report(first, end, stream, at_ns, latest)
        if gap is not None:
            day = await self._day(day_of(gap.received_ns))
            day.dirty |= quality.merge_gap(day.gaps, gap)

    async def flush(self) -> dict[int, int]:
        """Upload changed files, complete ended hours and days, rewrite manifests; return durable positions."""
        async with self._flush_lock:  # one flush at a time: a second waits, then finds less to do
            return await self._flush()

    async def _flush(self) -> dict[int, int]:
        positions = dict(self._added)
        now = self.clock()
        uploads = []
        for f in list(self._files.files.values()):
            complete = _hour_end(f) + self.close_after_ns <= now
            if f.dirty or (complete and f.status != COMPLETE):
                uploads.append(self._files.upload(f, complete=complete))
                self._days[_day_of_key(f)].dirty = True
        await run_all(uploads)
        for day in list(self._days.values()):
            closed = day_start_ns(day.date) + NS_PER_DAY + self.close_after_ns <= now
            if day.dirty or closed:
                await self._write_manifest(day, closed=closed, now=now)
            if closed:
                for key in day.keys:
                    self._files.drop(key)
                del self._days[day.date]
                self._keys.clear()
        return positions

    async def close(self) -> dict[int, int]:
        """Graceful stop: upload everything pending (partial files stay partial)."""
        return await self.flush()

    async def resume(self, dates: Iterable[dt.date] | None = None) -> None:
        """Take over the unfinished files of ``dates`` (default: yesterday and today, by the clock).

        Call once at start, before the first :meth:`add`: a day whose writer died is otherwise only
        completed if re-delivered input touches it. Loads every file of those days that its manifest
        does not list as complete, so the next flushes complete the files and the day in due time.
        """
        if dates is None:
            today = day_of(self.clock())
            dates = (today - dt.timedelta(days=1), today)
        for date in dates:
            prefix = names.raw_prefix(self.env, self.feed, date)
            keys = [i.key async for i in self._files.store.list(prefix) if i.key.endswith(".jsonl.zst")]
            if not keys:
                continue
            day = await self._day(date)
            done = {name for name, e in day.entries.items() if e.get("status") == COMPLETE}
            for f in await self._files.open_many(k for k in keys if k.rsplit("/", 1)[1] not in done):
                day.keys.add(f.key)
            day.dirty = True

    async def _day(self, date: dt.date) -> _Day:
        day = self._days.get(date)
        if day is None:
            old = await self._files.get_json(names.raw_manifest_key(self.env, self.feed, date))
            now = iso_ns(self.clock())
            if old is None:
                day = _Day(date, {}, {}, now)
            else:
                table: dict[quality.GapKey, Gap] = {}
                for g in mf.gaps_of(old):
                    quality.merge_gap(table, g)
                day = _Day(date, dict(old.get("entries", {})), table, str(old["created_at"]))
            self._days[date] = day
        return day

    async def _write_manifest(self, day: _Day, *, closed: bool, now: int) -> None:
        for key in day.keys:
            f = self._files.files.get(key)
            if f is not None:
                window = (day_start_ns(day.date), min(now, day_start_ns(day.date) + NS_PER_DAY))
                fm = mf.file_manifest(
                    f, feed=self.feed, date=day.date.isoformat(), data_type="raw", schema_version=None,
                    gaps=(), window=window, connector_version=self.connector_version,
                )
                day.entries[key.rsplit("/", 1)[1]] = mf.entry_of(fm)
        start = day_start_ns(day.date)
        end = start + NS_PER_DAY if closed else min(now, start + NS_PER_DAY)
        count = sum(int(e["record_count"]) for e in day.entries.values())
        score = quality.quality_score(day.gaps.values(), start, end, count)
        manifest = mf.directory_manifest(
            day.entries, feed=self.feed, date=day.date.isoformat(), data_type="raw", schema_version=None,
            connector_version=self.connector_version, created_at=day.created_at, now_ns=now,
            gaps=list(day.gaps.values()), score=score, closed=closed,
        )
        await self._files.put_json(names.raw_manifest_key(self.env, self.feed, day.date), manifest)
        day.dirty = False


def _day_of_key(f: SpoolFile) -> dt.date:
    # ssmd-raw/{env}/{feed}/YYYY/MM/DD/{type}-HH.jsonl.zst
    y, m, d = f.key.split("/")[3:6]
    return dt.date(int(y), int(m), int(d))


def _hour_end(f: SpoolFile) -> int:
    hour = int(f.key.rsplit("-", 1)[1][:2])
    return day_start_ns(_day_of_key(f)) + (hour + 1) * NS_PER_HOUR
