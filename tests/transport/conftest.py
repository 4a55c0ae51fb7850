"""Transport-only fixtures: fast group timings, in-process Faust apps, a raw NATS client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS


@pytest.fixture(autouse=True)
def _fast_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSMD_NATS_HEARTBEAT", "0.3")
    monkeypatch.setenv("SSMD_NATS_SESSION_TIMEOUT", "2")


@pytest.fixture
async def nc(nats_server: Any) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()
