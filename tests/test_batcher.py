"""The raw-frame batcher: bounded linger, batches that grow with load, retries that lose nothing."""

from __future__ import annotations

import asyncio
import time

from ssmd.capture.batcher import Batcher
from ssmd.records import RawFrame


def frame(n: int) -> RawFrame:
    return RawFrame(time.time_ns(), "orderbook_delta", b'{"n":%d}' % n, 7, frame_no=n)


async def test_a_lone_frame_waits_at_most_the_linger() -> None:
    sent: list[tuple[int, list[int], float]] = []
    t0 = time.monotonic()

    async def send(p: int, frames: list[RawFrame]) -> None:
        sent.append((p, [f.frame_no or 0 for f in frames], time.monotonic() - t0))

    b = Batcher(send, min_batch=64, linger=0.02)
    b.add(3, frame(1))
    b.add(3, frame(2))
    await asyncio.sleep(0.005)
    assert sent == []  # still lingering for company
    await asyncio.sleep(0.05)
    assert [(p, ns) for p, ns, _ in sent] == [(3, [1, 2])]
    assert 0.015 <= sent[0][2] < 0.2
    await b.close()


async def test_full_batches_go_at_once_and_group_commit_under_load() -> None:
    release = asyncio.Event()
    sent: list[list[int]] = []

    async def send(p: int, frames: list[RawFrame]) -> None:
        sent.append([f.frame_no or 0 for f in frames])
        await release.wait()  # the acknowledgement is slow

    b = Batcher(send, min_batch=4, linger=10.0, max_batch=100)
    for n in range(1, 5):
        b.add(0, frame(n))
    await asyncio.sleep(0)
    assert sent == [[1, 2, 3, 4]]  # min_batch reached: no linger
    for n in range(5, 50):
        b.add(0, frame(n))
    await asyncio.sleep(0.01)
    assert len(sent) == 1  # one batch in flight per partition
    release.set()
    await b.drain()
    assert sent == [[1, 2, 3, 4], list(range(5, 50))]
    assert (b.frames_sent, b.buffered) == (49, 0)
    await b.close()


async def test_failed_sends_are_retried_in_order_and_pressure_is_signalled() -> None:
    attempts = 0
    got: list[int] = []
    pressure: list[bool] = []

    async def send(p: int, frames: list[RawFrame]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            msg = "nats: timeout"
            raise ConnectionError(msg)
        got.extend(f.frame_no or 0 for f in frames)

    b = Batcher(send, min_batch=1, linger=0, high_water=10, on_pressure=pressure.append, retry_delay=0.01)
    for n in range(1, 21):
        b.add(1, frame(n))
    async with asyncio.timeout(5):
        await b.drain()
    assert got == list(range(1, 21)) and b.send_errors == 2
    assert pressure == [True, False]
    await b.close()


async def test_the_event_budget_grows_batches_under_load_and_bounds_the_wait() -> None:
    """Above ``max_rate`` batches/s, batches grow instead of the event rate; no frame waits past max_linger."""
    sent: list[tuple[int, int, float]] = []  # (partition, frames, oldest frame's wait in s)

    async def send(p: int, frames: list[RawFrame]) -> None:
        sent.append((p, len(frames), (time.time_ns() - frames[0].received_ns) / 1e9))
        await asyncio.sleep(0.001)  # an acknowledgement's round trip

    b = Batcher(send, min_batch=10_000, linger=0.001, max_linger=0.2, max_rate=100)
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < 1.0:  # ~8k frames/s over 8 partitions
        for _ in range(8):
            n += 1
            b.add(n % 8, frame(n))
        await asyncio.sleep(0.001)
    await b.drain()
    elapsed = time.monotonic() - t0
    assert sum(f for _, f, _ in sent) == n
    assert len(sent) <= 100 * elapsed + 8 + 8  # the budget, its burst, and one overdue batch per partition
    assert max(w for _, _, w in sent) < 0.2 + 0.25  # the bound, plus a loaded machine's scheduling delay
    await b.close()

    quiet: list[tuple[int, int, float]] = []

    async def send_quiet(p: int, frames: list[RawFrame]) -> None:
        quiet.append((p, len(frames), (time.time_ns() - frames[0].received_ns) / 1e9))

    b = Batcher(send_quiet, min_batch=10_000, linger=0.002, max_linger=0.2, max_rate=100)
    for k in range(10):  # 50 frames/s, under the budget: each goes after the short linger
        b.add(k % 8, frame(k + 1))
        await asyncio.sleep(0.02)
    await b.drain()
    assert [f for _, f, _ in quiet] == [1] * 10
    assert max(w for _, _, w in quiet) < 0.1
    await b.close()


async def test_cpu_pressure_lets_batches_wait_longer_up_to_busy_linger() -> None:
    pressure = 0.0
    sent: list[tuple[int, float]] = []  # (frames, oldest frame's wait in s)

    async def send(p: int, frames: list[RawFrame]) -> None:
        sent.append((len(frames), (time.time_ns() - frames[0].received_ns) / 1e9))

    b = Batcher(send, min_batch=10_000, linger=0.001, max_linger=0.02, max_rate=1, cpu_pressure=lambda: pressure,
                busy_linger=0.3)  # fmt: skip

    async def half_a_second() -> list[tuple[int, float]]:
        sent.clear()
        n, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < 0.5:  # 200 frames/s, far over a budget of 1 batch/s
            n += 1
            b.add(0, frame(n))
            await asyncio.sleep(0.005)
        await b.drain()
        assert sum(f for f, _ in sent) == n
        return list(sent)

    idle = await half_a_second()
    assert len(idle) >= 15 and max(w for _, w in idle) < 0.02 + 0.05, idle  # max_linger bounds the wait
    pressure = 0.5
    half = await half_a_second()
    waits = sorted(w for _, w in half[:-1])  # the last batch is the drain's
    assert 3 <= len(half) <= 8 and 0.16 - 0.02 <= waits[len(waits) // 2] < 0.16 + 0.08, half  # halfway: 160 ms
    pressure = 1.0
    loaded = await half_a_second()
    assert len(loaded) <= 3 and max(w for _, w in loaded) < 0.3 + 0.05, loaded  # batches of ~busy_linger
    await b.close()
