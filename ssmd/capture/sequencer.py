"""Exchange sequence checking per (connection, sid), where the whole sequence is visible.

Kalshi numbers sequenced frames per subscription (sid) from 1, across every market of the
subscription (``reference/kalshi-protocol.md`` §3.8); sids and seqs restart on every connection. A
partition of the raw stream sees only its tickers' frames, so it cannot tell a gap from another
partition's traffic: the check runs on the connection's complete stream, here.

:meth:`Sequencer.observe` is called for every frame in receive order. A seq above ``last + 1`` (or a
first seq above 1) is a gap for every market seen on that sid: Kalshi's gap names no ticker. A seq at or
below the last is a duplicate or late frame (an anomaly, not a gap); the frame is still recorded raw, and
the normalizer skips it by its own per-ticker check. A terminal error on a sid (codes 10 and 25) ends
it (:meth:`Sequencer.end`): its markets are subscribed again on a new sid whose seq restarts at 1, and
whatever the exchange did not send in between is a gap for every market the old sid carried.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SeqGap:
    connection_id: int
    sid: int
    expected: int
    received: int
    tickers: frozenset[str]

    @property
    def missing(self) -> int:
        return self.received - self.expected


@dataclass(slots=True)
class _Sid:
    last: int = 0
    tickers: set[str] = field(default_factory=set)


class Sequencer:
    def __init__(self) -> None:
        self._sids: dict[tuple[int, int], _Sid] = {}
        self.gaps = 0
        self.duplicates = 0

    def observe(self, connection_id: int, sid: int | None, seq: int | None, ticker: str | None) -> SeqGap | None:
        """Record one frame; return the gap it reveals, if any."""
        if sid is None:
            return None
        st = self._sids.get((connection_id, sid))
        if st is None:
            st = self._sids[(connection_id, sid)] = _Sid()
        if ticker is not None:
            st.tickers.add(ticker)
        if seq is None:
            return None
        expected = st.last + 1
        if seq < expected:
            self.duplicates += 1
            return None
        st.last = seq
        if seq == expected:
            return None
        self.gaps += 1
        return SeqGap(connection_id, sid, expected, seq, frozenset(st.tickers))

    def end(self, connection_id: int, sid: int) -> frozenset[str]:
        """The exchange ended ``sid``: forget it; return every market seen on it."""
        st = self._sids.pop((connection_id, sid), None)
        return frozenset(st.tickers) if st is not None else frozenset()

    def tickers_of(self, connection_id: int) -> frozenset[str]:
        """Every market seen on any sid of a connection (for its disconnect gap)."""
        out: set[str] = set()
        for (cid, _sid), st in self._sids.items():
            if cid == connection_id:
                out |= st.tickers
        return frozenset(out)

    def forget(self, connection_id: int) -> None:
        """Drop a closed connection's state (its sids will never be seen again)."""
        for key in [k for k in self._sids if k[0] == connection_id]:
            del self._sids[key]
