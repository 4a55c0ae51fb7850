"""Helpers for tests of code built on ssmd (shipped as API, so every test suite shares them)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_for(pred: Callable[[], bool], within: float = 20.0, what: str = "condition") -> None:
    """Poll ``pred`` every 50 ms until it is true; ``AssertionError`` naming ``what`` after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not pred():
        if loop.time() > deadline:
            msg = f"timed out waiting for {what}"
            raise AssertionError(msg)
        await asyncio.sleep(0.05)
