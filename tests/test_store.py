"""One suite for every object store: the same behaviour on file:// and on S3 (moto server)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from ssmd import names
from ssmd.errors import StoreError
from ssmd.settings import Settings
from ssmd.store import ObjectNotFound, ObjectStore, open_store
from ssmd.store.s3 import S3Store

DAY = dt.date(2025, 12, 14)


async def test_put_get_head_roundtrip(store: ObjectStore) -> None:
    key = names.raw_key("kalshi-dev", "kalshi", "trade", DAY, 0)
    payload = bytes(range(256)) * 10
    await store.put(key, payload)
    assert await store.get(key) == payload
    info = await store.head(key)
    assert info is not None and info.key == key and info.size == len(payload)
    assert info.last_modified.tzinfo is not None


async def test_put_replaces_whole_object(store: ObjectStore) -> None:
    key = names.raw_manifest_key("kalshi-dev", "kalshi", DAY)
    await store.put(key, b"first version, longer than the second")
    await store.put(key, b"second")
    assert await store.get(key) == b"second"


async def test_missing_object(store: ObjectStore) -> None:
    key = names.raw_key("kalshi-dev", "kalshi", "trade", DAY, 5)
    with pytest.raises(ObjectNotFound) as err:
        await store.get(key)
    assert err.value.key == key
    assert await store.head(key) is None
    await store.delete(key)  # deleting nothing is not an error


async def test_list_is_sorted_and_prefix_exact(store: ObjectStore) -> None:
    keys = [
        names.normalized_key("kalshi-dev", "kalshi", "trade", DAY, "KXGOLDH-26AUG2711-T4615.99"),
        names.normalized_key("kalshi-dev", "kalshi", "trade", DAY, "INXD-25-B4000"),
        names.raw_key("kalshi-dev", "kalshi", "orderbook", DAY, 1),
        names.raw_key("kalshi-dev", "kalshi", "orderbook", DAY, 0),
        names.raw_key("kalshi-dev2", "kalshi", "orderbook", DAY, 0),
    ]
    await asyncio.gather(*(store.put(k, k.encode()) for k in keys))
    raw = [i.key async for i in store.list(names.raw_prefix("kalshi-dev"))]
    assert raw == sorted(k for k in keys if k.startswith("ssmd-raw/kalshi-dev/"))
    partial = [i.key async for i in store.list("ssmd-raw/kalshi-dev/kalshi/2025/12/14/orderbook-0")]
    assert partial == [keys[3], keys[2]]
    assert [i.key async for i in store.list("ssmd-raw/nobody/")] == []


async def test_delete_prefix_leaves_other_envs(store: ObjectStore) -> None:
    mine = [names.raw_key("kalshi-dev", "kalshi", "trade", DAY, h) for h in range(3)]
    mine.append(names.normalized_key("kalshi-dev", "kalshi", "orderbook", DAY, "A.B"))
    other = names.raw_key("kalshi-prod", "kalshi", "trade", DAY, 0)
    await asyncio.gather(*(store.put(k, b"x") for k in [*mine, other]))
    deleted = 0
    for prefix in names.env_prefixes("kalshi-dev"):
        deleted += await store.delete_prefix(prefix)
    assert deleted == len(mine)
    for prefix in names.env_prefixes("kalshi-dev"):
        assert [i async for i in store.list(prefix)] == []
    assert await store.get(other) == b"x"


async def test_bad_keys_are_rejected(store: ObjectStore) -> None:
    for key in ["", "/abs", "a//b", "ssmd-raw/../etc/passwd", "ssmd-raw/./x"]:
        with pytest.raises(StoreError):
            await store.put(key, b"x")


async def test_s3_bucket_per_key_layout(s3_settings: Settings) -> None:
    """With a bare ``s3://`` URL the key's first part is the bucket, exactly the seed's layout."""
    from aiobotocore.session import get_session

    settings = Settings(
        store_url="s3://",
        s3_endpoint_url=s3_settings.s3_endpoint_url,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    key = names.raw_key("layout-test", "kalshi", "trade", DAY, 7)
    async with open_store(settings) as store:
        await store.put(key, b"payload")
    session = get_session()
    async with session.create_client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ) as s3:
        obj = await s3.get_object(Bucket="ssmd-raw", Key=key.removeprefix("ssmd-raw/"))
        async with obj["Body"] as body:
            assert await body.read() == b"payload"


async def test_unreachable_s3_is_a_clear_error() -> None:
    from ssmd.devstack import free_port

    settings = Settings(
        store_url="s3://bucket",
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    async with S3Store(
        settings.store_url, endpoint_url=settings.s3_endpoint_url, access_key_id="t", secret_access_key="t", retries=1
    ) as store:
        with pytest.raises(StoreError) as err:
            await store.get("ssmd-raw/x")
    assert "ssmd-raw/x" in str(err.value)
