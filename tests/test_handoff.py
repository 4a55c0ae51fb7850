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


def test_when_full_the_next_batches_to_be_taken_stay_and_stale_ones_go() -> None:
    """A lagging normalizer takes the oldest batches next: a full handoff keeps them, not the newest."""
    now = [0.0]
    batches = [_batch(2, first=1 + 2 * i) for i in range(10)]
    handoff = Handoff(max_bytes=len(batches[0][0]) * 4, max_age=5.0, clock=lambda: now[0])
    for data, frames in batches:
        handoff.put(data, frames)
        handoff.put(data, frames)  # a retried send keeps one copy
    assert (len(handoff), handoff.not_kept) == (4, 12)  # six batches found no room, twice each
    assert handoff.take(batches[0][0]) == batches[0][1]  # the oldest, next in line, is there
    assert handoff.take(batches[9][0]) is None  # the newest was not kept
    handoff.put(*batches[9])  # room again
    now[0] = 6.0  # nobody took batches 1-3 nor 9 for longer than max_age: stale, dropped for new ones
    fresh = _batch(2, first=100)
    handoff.put(*fresh)
    assert handoff.take(fresh[0]) == fresh[1]
    assert handoff.take(batches[1][0]) is None
