"""Raw batches handed from the capture to the normalizer in the same process, so it need not decode them.

When one worker runs both agents, the normalizer consumes from the raw stream the batches that the
capture beside it has just encoded: decoding them again rebuilt objects the process already had (about
a tenth of a busy worker's CPU). The capture keeps each batch's frames under the batch's exact bytes; the
normalizer looks up the bytes it consumed. A hit is the same bytes, so the frames are exactly what a
decode would give; anything else (another worker's batch, a batch evicted while the normalizer lagged) is
a miss and is decoded as usual. The stream stays the only path for ordering, offsets and durability.

Batches nobody takes (partitions this process captures but does not consume, for a moment during a
rebalance) are evicted oldest first once the kept bytes pass ``max_bytes``.
"""

from __future__ import annotations

from ssmd.records import RawFrame


class Handoff:
    def __init__(self, max_bytes: int = 32 << 20) -> None:
        self.max_bytes = max_bytes
        self._batches: dict[bytes, list[RawFrame]] = {}  # insertion order: oldest first
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def put(self, data: bytes, frames: list[RawFrame]) -> None:
        """Keep ``frames``, which ``data`` encodes, until :meth:`take` asks for ``data``."""
        if data in self._batches:
            return  # the same batch sent again (a retry)
        self._batches[data] = frames
        self._bytes += len(data)
        while self._bytes > self.max_bytes:
            oldest = next(iter(self._batches))
            del self._batches[oldest]
            self._bytes -= len(oldest)

    def take(self, data: bytes) -> list[RawFrame] | None:
        """The frames of the batch whose bytes are ``data``, once; None if this process did not keep it."""
        frames = self._batches.pop(data, None)
        if frames is None:
            self.misses += 1
            return None
        self._bytes -= len(data)
        self.hits += 1
        return frames

    def __len__(self) -> int:
        return len(self._batches)
