"""The worker's garbage-collector settling: garbage is collected, survivors are frozen out of later scans."""

from __future__ import annotations

import gc
import weakref

from ssmd import gcpause


class _Node:
    def __init__(self) -> None:
        self.peer: _Node | None = None


def test_settle_collects_cycles_then_freezes_the_survivors() -> None:
    a, b = _Node(), _Node()
    a.peer, b.peer = b, a  # a cycle only the collector can free
    dead = weakref.ref(a)
    del a, b
    alive = _Node()
    try:
        frozen = gcpause.settle()
        assert dead() is None  # collected before the freeze, not frozen forever
        assert frozen == gc.get_freeze_count() > 0
        assert not any(o is alive for o in gc.get_objects())  # frozen objects are out of every generation
    finally:
        gc.unfreeze()
