"""Fixtures that start real servers on free loopback ports and always stop them.

- ``nats_server``: a fresh ``nats-server -js`` per test (about 0.1 s to start), temp store.
- ``valkey_server``: a fresh ``valkey-server`` per test.
- ``moto_s3``: one moto S3 server for the session (it takes about a second to start); tests stay
  isolated by using a fresh bucket/prefix each (see ``store_url``).
- ``store``: an :class:`~ssmd.store.ObjectStore`, parametrized over ``file`` and ``s3``, so a test
  written once runs against both implementations.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ssmd.devstack import MotoS3Server, NatsServer, ValkeyServer
from ssmd.settings import Settings
from ssmd.store import ObjectStore, open_store


@pytest.fixture(autouse=True)
def _environ_unchanged() -> Iterator[None]:
    """Fail a test that leaves os.environ changed (it would leak settings into later tests)."""
    def snapshot() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}

    before = snapshot()
    yield
    assert snapshot() == before, "test changed os.environ; use monkeypatch.setenv"


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    with NatsServer(data_dir=tmp_path / "nats") as server:
        yield server


@pytest.fixture
def valkey_server(tmp_path: Path) -> Iterator[ValkeyServer]:
    with ValkeyServer(data_dir=tmp_path / "valkey") as server:
        yield server


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3Server]:
    with MotoS3Server(data_dir=tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def s3_settings(moto_s3: MotoS3Server) -> Settings:
    """Settings pointing at the moto server with a bucket of this test's own."""
    return Settings(
        store_url=f"s3://test-{uuid.uuid4().hex[:12]}/root",
        s3_endpoint_url=moto_s3.url,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )


@pytest.fixture(params=["file", "s3"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "file":
        return Settings(store_url=f"file://{tmp_path / 'store'}")
    settings: Settings = request.getfixturevalue("s3_settings")
    return settings


@pytest.fixture
async def store(store_settings: Settings) -> AsyncIterator[ObjectStore]:
    async with open_store(store_settings) as s:
        yield s
