"""Simulator fixtures: an in-process simulator (frozen order flow, ground truth on) and signed clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from ssmd.sim.simulator import Simulator
from ssmd.sim.testing import SimClient, test_config

ClientFactory = Callable[..., Awaitable[SimClient]]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A simulator whose books move only on ``await sim.step(n)``."""
    async with Simulator(test_config()) as s:
        yield s


@pytest.fixture
async def client_for() -> AsyncIterator[ClientFactory]:
    """``await client_for(sim, **connect_kwargs)``: a connected, signed client, closed at teardown."""
    opened: list[SimClient] = []

    async def factory(s: Simulator, **kwargs: Any) -> SimClient:
        c = await SimClient.connect(s, **kwargs)
        opened.append(c)
        return c

    yield factory
    for c in opened:
        await c.close()


@pytest.fixture
async def client(sim: Simulator, client_for: ClientFactory) -> SimClient:
    return await client_for(sim)
