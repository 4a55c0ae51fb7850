"""Resync requests: asked at once for a new gap, repeated with a doubling interval until the gap closes."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ssmd import names
from ssmd.capture import resync


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def requests(open_gaps: dict[str, int], clock: Clock) -> tuple[resync.ResyncRequests, list[set[str]]]:
    sent: list[set[str]] = []

    async def send(tickers: set[str]) -> None:
        sent.append(set(tickers))

    return resync.ResyncRequests(send, open_gaps.get, first_retry=3.0, attempts=3, clock=clock), sent


async def test_a_new_gap_is_asked_at_once_and_once() -> None:
    clock = Clock()
    gaps = {"A": 1, "B": 2}
    req, sent = requests(gaps, clock)
    await req.request({"A", "B"})
    await req.request({"A"})  # every delta on a bad book names it again: no new request
    clock.now += 2.9
    await req.request({"A", "B"})
    await req.repeat()
    assert sent == [{"A", "B"}]
    assert req.sent == 2 and req.pending == 2


async def test_repeats_double_until_the_gap_closes_then_stop(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    gaps = {"A": 1}
    req, sent = requests(gaps, clock)
    await req.request({"A"})
    times = []
    for _ in range(60):  # 30 s in 0.5 s steps (exact in binary)
        clock.now += 0.5
        before = len(sent)
        await req.repeat()
        if len(sent) > before:
            times.append(round(clock.now - 100.0, 1))
    assert times == [3.0, 9.0]  # then 3 attempts are spent: given up
    assert req.given_up == 1
    assert "no snapshot of A after 3 requests" in caplog.text
    gaps["A"] = 5  # a new gap of the same market starts over
    await req.request({"A"})
    assert sent[-1] == {"A"} and len(sent) == 4
    del gaps["A"]  # closed by a snapshot: forgotten
    await req.repeat()
    assert req.pending == 0


async def test_a_closed_gap_is_not_asked_for() -> None:
    req, sent = requests({}, Clock())
    await req.request({"A"})  # opened and closed within one event
    assert sent == [] and req.pending == 0


async def test_the_capture_side_serves_requests_by_ticker(caplog: pytest.LogCaptureFixture) -> None:
    got: list[str] = []
    subscribed: list[str] = []
    handlers = []

    class Producer:  # the nats:// producer's subscribe_core contract, without a server
        async def subscribe_core(self, subject: str, handler: object) -> None:
            subscribed.append(subject)
            handlers.append(handler)

    assert await resync.listen(Producer(), "kalshi-dev", "kalshi", got.append)
    assert subscribed == ["kalshi-dev.kalshi.resync.*"]
    (handle,) = handlers
    for subject in resync.subjects("kalshi-dev", "kalshi", ["KXGOLDH-26AUG2711-T4615.99"]):
        handle(subject, b"")
    with caplog.at_level(logging.WARNING):
        handle("kalshi-dev.kalshi.resync.%41", b"")  # not a canonical token: dropped, said
    assert got == ["KXGOLDH-26AUG2711-T4615.99"]
    assert "ignored a resync request" in caplog.text
    assert not await resync.listen(object(), "kalshi-dev", "kalshi", got.append)  # memory://: none


def test_resync_subjects_are_the_seed_pattern() -> None:
    assert names.resync_subject("kalshi-dev", "kalshi", "KXGOLDH-26AUG2711-T4615.99") == (
        "kalshi-dev.kalshi.resync.KXGOLDH-26AUG2711-T4615%2E99"
    )
    assert names.resync_wildcard("kalshi-dev", "kalshi") == "kalshi-dev.kalshi.resync.*"


async def test_repeating_runs_as_a_service() -> None:
    clock = Clock()
    req, sent = requests({"A": 1}, clock)
    await req.request({"A"})
    await req.start()
    try:
        clock.now += 3.0
        for _ in range(30):
            await asyncio.sleep(0.1)
            if len(sent) == 2:
                break
    finally:
        await req.stop()
    assert sent == [{"A"}, {"A"}]
