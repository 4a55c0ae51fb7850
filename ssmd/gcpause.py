"""Short and rare garbage-collector pauses for long-running workers.

CPython's collector pauses the event loop while it walks the container objects of a generation, and
every frame a worker handles creates several. Two settings, both measured in
``bench/bench_pipeline.py`` with a ``gc.callbacks`` timer in the worker (2-core VM):

- **Freeze the startup heap.** A full (generation 2) collection walks every container the process
  holds; the heap after startup (modules, Faust, the app, its tables) is large, so each full collection
  paused the loop for 60-80 ms every few seconds under load. Once the worker has started,
  :func:`settle` collects what is garbage and freezes the rest (``gc.freeze``): those objects are never
  scanned again.
- **Collect the youngest generation after 10,000 net allocations, not 700.** A frame's objects live
  for milliseconds (a raw batch waits up to 50 ms); with the default threshold, collections came ~20
  times a second at 16k frames/s and scanned the frames in flight, promoting them so that older
  generations were scanned too: ~4% of the worker's CPU and generation-1 pauses of up to 19 ms. With
  10,000, most of those objects have died by reference counting before a collection comes, which
  happens every 2-12 s: under 0.6% of the time, pauses of 8-17 ms (there is no cyclic garbage on the
  hot path: ``gc.DEBUG_SAVEALL`` over 3 s at 11.7k frames/s saved none). Older generations are
  collected correspondingly less often (every 20 younger collections), so the full collections that
  remain (30-70 ms, mostly the caches' objects) come minutes apart instead of every few seconds.

Objects that die by reference counting are freed as always; a reference cycle is collected later than
with the defaults (at most a few seconds for young objects); only a cycle among frozen objects that
becomes garbage later is never reclaimed, which the startup heap does not do.
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 20, 20)
"""``gc.set_threshold`` of a settled worker: generation 0 after this many net allocations, generations 1
and 2 after this many collections of the generation below."""


def settle() -> int:
    """Collect, then freeze every surviving object and set :data:`THRESHOLDS`; return how many are frozen."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    return gc.get_freeze_count()
