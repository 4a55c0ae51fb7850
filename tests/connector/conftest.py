"""Connector fixtures: a real in-process simulator (no mocks) and the key file it wrote."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ssmd.sim import SimConfig, Simulator


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "kalshi.pem"


@pytest.fixture
async def sim(key_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Simulator]:
    """A simulator with no order flow of its own (``rate=0``): tests drive it with ``sim.step``.

    Parametrize indirectly with a dict of :class:`SimConfig` fields to change it.
    """
    fields: dict[str, Any] = {"markets": 30, "rate": 0, "seed": 3, "record": True}
    fields.update(getattr(request, "param", {}))
    async with Simulator(SimConfig(**fields), key_path=key_path) as simulator:
        yield simulator
