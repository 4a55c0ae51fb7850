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
    thresholds = gc.get_threshold()
    try:
        frozen = gcpause.settle()
        assert dead() is None  # collected before the freeze, not frozen forever
        assert frozen == gc.get_freeze_count() > 0
        assert not any(o is alive for o in gc.get_objects())  # frozen objects are out of every generation
        assert gc.get_threshold() == gcpause.THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_cycles_made_after_settling_are_still_collected() -> None:
    """Settling delays collections; it does not turn the collector off."""
    thresholds = gc.get_threshold()
    try:
        gcpause.settle()
        a, b = _Node(), _Node()
        a.peer, b.peer = b, a
        dead = weakref.ref(a)
        del a, b
        for _ in range(gcpause.THRESHOLDS[0]):  # 2 net allocations each: a young collection comes
            _keep.append([_Node()])
        assert dead() is None
    finally:
        _keep.clear()
        gc.unfreeze()
        gc.set_threshold(*thresholds)


_keep: list[object] = []
