"""Waiting for the operator's stop signal, the way servers do it.

:func:`wait_for_stop` blocks until SIGINT or SIGTERM and returns its number; the previous handlers are
restored afterwards, so a second Ctrl-C during shutdown gets Python's default behaviour (force exit).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def wait_for_stop() -> int:
    received: list[int] = []
    done = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        done.set()

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        while not done.wait(0.5):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return received[0]
