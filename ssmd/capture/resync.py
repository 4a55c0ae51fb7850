"""Resync requests: a normalizer asking the capture for fresh snapshots, wherever the capture runs.

A normalizer that finds a book it cannot trust (a delta before any snapshot, a level below zero, a
malformed frame, a bus gap) needs a fresh snapshot of that market, and only the capture holding the
market's subscription can ask the exchange for one (``get_snapshot``). When both run in one worker the
request is a call; when they run in separate workers (``--agents connector`` and ``--agents
normalizer``) it is a core NATS message on :func:`ssmd.names.resync_subject`, one per market, which every
capture subscribes to (:func:`listen`) and serves for the markets it captures.

Either way a request can come to nothing: core NATS is at most once, the capture may be reconnecting,
or the market may be between subscriptions. So :class:`ResyncRequests` repeats a request, with a
doubling interval, until the gap it is for is closed by a snapshot, and gives up (with a warning) after
a few tries: a gap that outlives them stays open, its records flagged, until a snapshot does come.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mode import Service

from ssmd import names
from ssmd.errors import InvalidNameError

log = logging.getLogger("ssmd.capture.resync")

FIRST_RETRY = 3.0
"""Seconds before a request is repeated the first time (a snapshot normally comes back well within it)."""
ATTEMPTS = 6
"""Requests per gap: the first and five repeats, 3, 6, 12, 24 and 48 s apart (about 1.5 minutes in all)."""


@dataclass(slots=True)
class _Pending:
    gap: int  # start of the gap the requests are for: a new gap of the same market starts over
    sent: int
    next_at: float


class ResyncRequests(Service):
    """Which markets to ask a snapshot for now: new gaps at once, open ones again when their retry is due.

    ``open_gap(ticker)`` gives the start of the ticker's open gap (None: its book is trusted, or this
    process no longer holds it); ``send(tickers)`` delivers requests. Running as a service, it repeats
    due requests once a second. Not thread-safe (one event loop).
    """

    def __init__(self, send: Callable[[set[str]], Awaitable[None]], open_gap: Callable[[str], int | None], *,
                 first_retry: float = FIRST_RETRY, attempts: int = ATTEMPTS,
                 clock: Callable[[], float] = time.monotonic, **kw: Any) -> None:  # fmt: skip
        super().__init__(**kw)
        self._send = send
        self._open_gap = open_gap
        self.first_retry = first_retry
        self.attempts = attempts
        self._clock = clock
        self._pending: dict[str, _Pending] = {}
        self.sent = 0
        """Requests sent (one per market)."""
        self.given_up = 0
        """Gaps still open after every attempt."""

    def due(self, tickers: Iterable[str]) -> set[str]:
        """Those of ``tickers`` to request now; it counts them as requested. Drops closed gaps."""
        now = self._clock()
        out: set[str] = set()
        for ticker in tickers:
            gap = self._open_gap(ticker)
            p = self._pending.get(ticker)
            if gap is None:
                if p is not None:
                    del self._pending[ticker]
            elif p is None or p.gap != gap:
                self._pending[ticker] = _Pending(gap, 1, now + self.first_retry)
                out.add(ticker)
            elif now < p.next_at:
                continue
            elif p.sent < self.attempts:
                p.sent += 1
                p.next_at = now + self.first_retry * 2 ** (p.sent - 1)
                out.add(ticker)
            else:
                p.next_at = float("inf")  # given up on this gap; a new gap of the market starts over
                self.given_up += 1
                log.warning("no snapshot of %s after %d requests; its records stay flagged until one comes",
                            ticker, p.sent)  # fmt: skip
        return out

    async def request(self, tickers: Iterable[str]) -> None:
        """Ask for snapshots of ``tickers`` whose gaps are new or due for a repeat."""
        if wanted := self.due(tickers):
            self.sent += len(wanted)
            await self._send(wanted)

    async def repeat(self) -> None:
        """Repeat what is due among every pending request (the service does, once a second)."""
        await self.request(list(self._pending))

    @Service.task
    async def _repeating(self) -> None:
        while not self.should_stop:
            await self.sleep(1.0)
            try:
                await self.repeat()
            except Exception as e:  # e.g. NATS unreachable for a moment: the next round tries again
                log.error("repeating resync requests failed (retried): %r", e)

    @property
    def pending(self) -> int:
        """Markets with an open gap that requests were sent for."""
        return len(self._pending)


async def listen(producer: Any, env: str, feed: str, on_request: Callable[[str], None]) -> bool:
    """Subscribe ``on_request(ticker)`` to every resync request of ``env``'s ``feed``.

    ``producer`` is the app's producer; False when its transport has no core subscriptions. A request on
    a subject that names no valid market is logged and dropped.
    """
    subscribe = getattr(producer, "subscribe_core", None)
    if subscribe is None:
        return False

    def handle(subject: str, _payload: bytes) -> None:
        try:
            ticker = names.symbol_of_subject(subject)
        except InvalidNameError as e:
            log.warning("ignored a resync request on %r: %s", subject, e)
            return
        on_request(ticker)

    await subscribe(names.resync_wildcard(env, feed), handle)
    return True


def subjects(env: str, feed: str, tickers: Iterable[str]) -> list[str]:
    """The request subjects of ``tickers`` (one message each)."""
    return [names.resync_subject(env, feed, t) for t in tickers]
