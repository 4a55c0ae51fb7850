"""Bus gaps of an archive writer: stream messages removed (retention, a purge) before it read them.

A removal is seen by every partition of the stream whose read position it passed (offsets are stream
sequences), each with its own first sequence. An archive lists it once: :class:`BusGaps` turns the
reports into one ``bus`` gap (ticker ``""``: any market) per removal, from the latest record archived
before it to the first read after it, with the lowest first sequence reported. What the removed
messages held is unknown, so ``missing`` is 0 and the gap costs coverage only.
"""

from __future__ import annotations

from ssmd.records import Gap

_KEPT = 64  # removals are rare; the oldest are long reported


class BusGaps:
    def __init__(self) -> None:
        self._known: dict[tuple[str, int], Gap] = {}  # (stream, end of the removed range): its gap

    def report(self, first: int, end: int, stream: str, at_ns: int, latest_ns: int | None) -> Gap | None:
        """The gap for stream sequences ``first..end-1`` removed unread; None if nothing new is known of it.

        ``at_ns``: receive time of the first record read after the removal (on this partition);
        ``latest_ns``: of the latest archived before it (None when unknown: the gap then has no length,
        but still names the range). Another partition's report of the same removal with a lower
        ``first`` or an earlier ``at_ns`` gives the gap again, widened, with the same start (so the new
        record replaces the first one: gaps are identified by their start).
        """
        known = self._known.get((stream, end))
        if known is not None:
            if known.expected_seq is not None and known.expected_seq <= first and known.received_ns <= at_ns:
                return None
            first = min(first, known.expected_seq if known.expected_seq is not None else first)
            at_ns = min(at_ns, known.received_ns)
            start = min(known.start_ns, at_ns)
        else:
            start = min(at_ns, latest_ns) if latest_ns is not None else at_ns
        gap = Gap("", "bus", start, at_ns, at_ns, expected_seq=first, received_seq=end, stream=stream)
        if len(self._known) >= _KEPT and known is None:
            del self._known[next(iter(self._known))]
        self._known[stream, end] = gap
        return gap
