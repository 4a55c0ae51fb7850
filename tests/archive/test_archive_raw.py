"""The raw archive: lines keep frames byte for byte, hourly rotation, manifests, crash safety."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from archive_helpers import DAY, ENV, SEC, T0, Clock, Crash, CrashingStore, Event, raw_events

from ssmd import names
from ssmd.archive import ArchiveReader, RawArchiver, zfile
from ssmd.archive.raw import decode_line, encode_line
from ssmd.archive.timefmt import NS_PER_DAY, NS_PER_HOUR
from ssmd.records import Gap, RawFrame
from ssmd.store import ObjectStore

ODD_FRAMES = [
    b'{"type":"trade","sid":1,"seq":1,"msg":{"yes_price_dollars":"0.5600"}}',
    b'{ "type" : "orderbook_delta" ,\r "msg" : {"price": 0.10} }',  # odd whitespace, a bare \r: kept verbatim
    b'"just a JSON string"',
    b"not json at all",
    b'{"type":"ok",\n"id":3}',  # valid JSON, but a newline would split the line: base64
    b"\xff\xfe\x00binary",
    b'{"truncated":',
]


def test_lines_keep_every_frame_exactly() -> None:
    for i, data in enumerate(ODD_FRAMES):
        frame = RawFrame(T0 + i, "trade", data, 9, frame_no=i + 1)
        line = encode_line(frame)
        assert line.endswith(b"}\n") and line.count(b"\n") == 1
        head = json.loads(line)  # every line is one JSON object
        assert head["ts"] == (T0 + i) // 10**6 and head["type"] == "trade" and head["no"] == i + 1
        back = decode_line(line)
        assert back.data == data and back.frame() == frame
    assert encode_line(RawFrame(T0, "trade", ODD_FRAMES[0])).endswith(b',"data":' + ODD_FRAMES[0] + b"}\n")
    assert b'"enc":"base64"' in encode_line(RawFrame(T0, "trade", ODD_FRAMES[3]))


async def test_write_rotate_complete_and_read_back(store: ObjectStore, tmp_path: Path) -> None:
    clock = Clock(T0 + 10 * SEC)
    w = RawArchiver(store, env=ENV, spool_dir=tmp_path / "spool", clock=clock, close_after=30)
    frames = [RawFrame(T0 + (i + 1) * SEC, ch, d, 5, frame_no=i + 1)
              for i, (ch, d) in enumerate(zip(["trade", "orderbook_delta", "trade", "error", "ok", "trade", "bogus"],
                                              ODD_FRAMES, strict=True))]
    late = RawFrame(T0 + NS_PER_HOUR + 5 * SEC, "trade", b'{"type":"trade"}', 5, frame_no=8)
    gap = Gap("", "disconnect", start_ns=T0 + 100 * SEC, received_ns=T0 + 200 * SEC, end_ns=T0 + 200 * SEC,
              connection_id=5)
    await w.add(frames[:4], (0, 1))
    await w.add([*frames[4:], late, gap], (0, 2))
    assert await w.flush() == {0: 2}

    reader = ArchiveReader(store, env=ENV)
    got = [line.data async for line in reader.raw_lines(DAY)]
    assert sorted(got) == sorted([*ODD_FRAMES, late.data])
    assert [line.data async for line in reader.raw_lines(DAY, file_type="trades", hour=0)] == [
        ODD_FRAMES[0], ODD_FRAMES[2], ODD_FRAMES[5]]
    keys = await reader.raw_files(DAY)
    assert [k.rsplit("/", 1)[1] for k in keys] == [
        "orderbook-00.jsonl.zst", "trades-00.jsonl.zst", "control-00.jsonl.zst", "trades-01.jsonl.zst"]

    m = await reader.raw_manifest(DAY)
    assert m is not None and m["status"] == "partial" and m["condition"] == "pending"
    assert m["record_count"] == 8 and m["data_type"] == "raw" and m["feed"] == "kalshi"
    assert m["entries"]["trades-00.jsonl.zst"]["record_count"] == 3
    assert [g["kind"] for g in m["gaps"]] == ["disconnect"]

    clock.now = T0 + NS_PER_HOUR + 31 * SEC  # hour 0 ended more than close_after ago
    await w.flush()
    m = await reader.raw_manifest(DAY)
    assert m is not None and m["status"] == "partial"
    assert m["entries"]["trades-00.jsonl.zst"]["status"] == "complete"
    assert m["entries"]["trades-01.jsonl.zst"]["status"] == "partial"
    meta, _ = zfile.unpack(await store.get(keys[1]))
    assert meta["status"] == "complete" and meta["frames"] == 1 and meta["watermark"] == {"0": 2}

    clock.now = T0 + NS_PER_DAY + 31 * SEC
    await w.close()
    m = await reader.raw_manifest(DAY)
    assert m is not None and m["status"] == "complete" and m["condition"] == "degraded"
    assert m["quality_score"] == pytest.approx(1 - 100 / 86400, abs=1e-6)

    # The zstd command-line tool reads the file (it skips the metadata frame): one JSON object a line.
    blob = await store.get(keys[1])
    out = await asyncio.to_thread(subprocess.run, ["zstd", "-d", "-c"], input=blob, capture_output=True, check=True)
    lines = out.stdout.splitlines()
    assert [json.loads(x)["no"] for x in lines] == [1, 3, 6]
    assert lines[0].endswith(b',"data":' + ODD_FRAMES[0] + b"}")


async def _run_until_crash(w: RawArchiver, events: list[Event], committed: dict[int, int], clock: Clock,
                           rng: random.Random) -> bool:
    """Feed events after ``committed`` like an agent; commit after flush. False if the writer 'crashed'."""
    try:
        for e in events:
            if e.offset <= committed.get(e.partition, 0):
                continue
            clock.now = max(clock.now, e.at_ns)
            await w.add(e.items, e.position)
            if rng.random() < 0.25:
                positions = await w.flush()
                if rng.random() < 0.2:
                    return False  # died after the upload, before committing
                committed.update(positions)
            if rng.random() < 0.03:
                return False  # died with unflushed frames
        clock.now = T0 + NS_PER_DAY + 120 * SEC
        committed.update(await w.close())
        return True
    except Crash:
        return False


async def test_crash_anywhere_keeps_every_frame_exactly_once(store: ObjectStore, tmp_path: Path) -> None:
    # Two histories on file://, one on S3 (moto answers in ~20 ms a request).
    for seed in (1, 2) if store.url.startswith("file:") else (3,):
        await _crash_history(store, tmp_path / str(seed), seed, f"{ENV}-{seed}")


async def _crash_history(store: ObjectStore, tmp_path: Path, seed: int, env: str) -> None:
    rng = random.Random(seed)
    events = raw_events(rng, 80 if store.url.startswith("file:") else 60, 3 * NS_PER_HOUR)
    clock = Clock()
    committed: dict[int, int] = {}
    crashes = 0
    while True:
        # Each incarnation may die at a random put, in the middle of a flush, like kill -9.
        crashing = CrashingStore(store, rng.randrange(40) if crashes < 6 else None)
        w = RawArchiver(crashing, env=env, spool_dir=tmp_path / "spool", clock=clock, close_after=60)
        await w.resume([DAY])
        if await _run_until_crash(w, events, committed, clock, rng):
            break
        crashes += 1
    assert crashes >= 3

    reader = ArchiveReader(store, env=env)
    got = Counter([(line.connection_id, line.frame_no, line.data) async for line in reader.raw_lines(DAY)])
    want = Counter((f.connection_id, f.frame_no, f.data) for e in events for f in e.items)
    assert got == want  # nothing missing, nothing doubled, every byte kept
    m = await reader.raw_manifest(DAY)
    assert m is not None and m["status"] == "complete" and m["record_count"] == sum(want.values())
    for key in await reader.raw_files(DAY):
        entry = m["entries"][key.rsplit("/", 1)[1]]
        meta, content = zfile.read(await store.get(key))
        assert entry["record_count"] == content.count(b"\n") == meta["records"]
        assert entry["status"] == meta["status"] == "complete"
        assert entry["byte_size"] == (await store.head(key)).size  # type: ignore[union-attr]
    assert names.raw_manifest_key(ENV, "kalshi", DAY).endswith("/2025/12/14/manifest.json")


async def test_restart_completes_a_day_whose_writer_died(store: ObjectStore, tmp_path: Path) -> None:
    clock = Clock(T0 + 10 * SEC)
    w = RawArchiver(CrashingStore(store, puts=1), env=ENV, spool_dir=tmp_path / "spool", clock=clock)
    await w.add([RawFrame(T0 + SEC, "trade", b"{}", 1, frame_no=1)], (0, 1))
    with pytest.raises(Crash):
        await w.flush()  # the hour file is in, the day manifest is not
    clock.now = T0 + NS_PER_DAY + 2 * NS_PER_HOUR  # restarted the next day, nothing left to re-deliver
    w = RawArchiver(store, env=ENV, spool_dir=tmp_path / "spool", clock=clock)
    await w.resume()
    await w.flush()
    m = await ArchiveReader(store, env=ENV).raw_manifest(DAY)
    assert m is not None and m["status"] == "complete" and m["condition"] == "available"
    assert m["entries"]["trades-00.jsonl.zst"]["record_count"] == 1
