"""Raw batches handed from the capture to the normalizer in the same process, so it need not decode them.

When one worker runs both agents, the normalizer consumes from the raw stream the batches that the
capture beside it has just encoded: decoding them again rebuilt objects the process already had (about
a tenth of a busy worker's CPU). The capture keeps each batch's frames under the batch's exact bytes; the
normalizer looks up the bytes it consumed. A hit is the same bytes, so the frames are exactly what a
decode would give; anything else (another worker's batch, a batch evicted while the normalizer lagged) is
a miss and is decoded as usual. The stream stays the only path for ordering, offsets and durability.

At most ``max_bytes`` are kept. When that is full, batches older than ``max_age`` seconds are dropped
(nobody is taking them: partitions this process captures but no longer consumes, for a moment during a
rebalance), and if it is still full the new batch is not kept. Not the oldest: the normalizer reads in
order, so while it lags the oldest batches are the next it takes, and dropping them made every batch a
miss (decoded again, which made it lag more; seen at ~29k frames/s).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ssmd.records import RawFrame


class Handoff:
    def __init__(self, max_bytes: int = 64 << 20, max_age: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._clock = clock
        self._batches: dict[bytes, tuple[float, list[RawFrame]]] = {}  # insertion order: oldest first
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self.not_kept = 0

    def put(self, data: bytes, frames: list[RawFrame]) -> None:
        """Keep ``frames``, which ``data`` encodes, until :meth:`take` asks for ``data`` (if there is room)."""
        if data in self._batches:
            return  # the same batch sent again (a retry)
        now = self._clock()
        if self._bytes + len(data) > self.max_bytes:
            self._drop_older_than(now - self.max_age)
            if self._bytes + len(data) > self.max_bytes:
                self.not_kept += 1
                return
        self._batches[data] = (now, frames)
        self._bytes += len(data)

    def _drop_older_than(self, cutoff: float) -> None:
        while self._batches:
            oldest = next(iter(self._batches))
            if self._batches[oldest][0] >= cutoff:
                return
            del self._batches[oldest]
            self._bytes -= len(oldest)

    def take(self, data: bytes) -> list[RawFrame] | None:
        """The frames of the batch whose bytes are ``data``, once; None if this process did not keep it."""
        kept = self._batches.pop(data, None)
        if kept is None:
            self.misses += 1
            return None
        self._bytes -= len(data)
        self.hits += 1
        return kept[1]

    def __len__(self) -> int:
        return len(self._batches)
