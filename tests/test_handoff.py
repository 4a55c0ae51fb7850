"""The in-process handoff of raw batches: exact bytes in, the same frames out, once; bounded."""

from __future__ import annotations

from ssmd import codec
from ssmd.capture.handoff import Handoff
from ssmd.records import RawFrame


def _batch(n: int, first: int = 1) -> tuple[bytes, list[RawFrame]]:
    frames = [RawFrame(10**18 + i, "trade", b'{"type":"trade","seq":%04d}' % i, 7, 1, i, "A", i)
              for i in range(first, first + n)]  # fmt: skip
    return codec.encode_batch(frames), frames


def test_a_consumed_copy_of_the_bytes_finds_the_frames_once() -> None:
    handoff = Handoff()
    data, frames = _batch(3)
    handoff.put(data, frames)
    consumed = bytes(bytearray(data))  # what the consumer reads is another object with the same bytes
    assert consumed is not data
    assert handoff.take(consumed) == codec.decode_batch(consumed) == frames
    assert handoff.take(consumed) is None  # once
    other, _ = _batch(3, first=4)
    assert handoff.take(other) is None
    assert (handoff.hits, handoff.misses, len(handoff)) == (1, 2, 0)


def test_untaken_batches_are_evicted_oldest_first() -> None:
    batches = [_batch(2, first=1 + 2 * i) for i in range(10)]
    handoff = Handoff(max_bytes=len(batches[0][0]) * 4)
    for data, frames in batches:
        handoff.put(data, frames)
        handoff.put(data, frames)  # a retried send keeps one copy
    assert len(handoff) == 4
    assert handoff.take(batches[5][0]) is None
    assert handoff.take(batches[9][0]) == batches[9][1]
