"""Short garbage-collector pauses for long-running workers.

CPython's full (generation 2) collection walks every container object the process holds. A worker's
heap after startup (modules, Faust, the app, its tables) is large, so each full collection paused the
event loop for 60-80 ms every few seconds under load: the whole tail of the capture latency. Once the
worker has started, :func:`settle` collects what is garbage and freezes the rest (``gc.freeze``): those
objects are never scanned again, and later full collections walk only what was created since.

Objects that die by reference counting are freed as always; only a reference cycle among frozen
objects that becomes garbage later is never reclaimed, which the startup heap does not do.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect, then freeze every surviving object; return how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
