"""``s3://``: the object store on S3 or any S3-protocol server (MinIO, R2, moto), over aiobotocore.

Two URL forms:

- ``s3://``: the first part of every ssmd key is the bucket (``ssmd-raw``, ``ssmd-normalized``), so
  the layout in S3 is exactly the seed's.
- ``s3://BUCKET[/PREFIX]``: one bucket holds everything; keys are stored under ``PREFIX/``.

A ``put`` into a missing bucket creates it once and retries (convenient for MinIO and moto; on AWS,
create buckets with their policies ahead of time). The endpoint, region and credentials come from
:class:`~ssmd.settings.Settings`; unset credentials fall back to botocore's usual chain.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

from ssmd.errors import ConfigError, StoreError
from ssmd.store.base import ObjectInfo, ObjectNotFound, check_key

_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3Store:
    """Object store over S3. Open with ``async with S3Store(...)`` or call :meth:`close`."""

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        retries: int = 5,
    ) -> None:
        if not url.startswith("s3://"):
            msg = f"invalid S3 store URL {url!r}: use s3:// or s3://BUCKET/PREFIX"
            raise ConfigError(msg)
        self.url = url
        bucket, _, prefix = url[len("s3://") :].partition("/")
        self.bucket = bucket or None
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._client_args: dict[str, Any] = {"region_name": region, "endpoint_url": endpoint_url}
        self._retries = retries
        if access_key_id:
            self._client_args["aws_access_key_id"] = access_key_id
            self._client_args["aws_secret_access_key"] = secret_access_key
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._made: set[str] = set()
        self._bucket_lock = asyncio.Lock()

    async def _s3(self) -> Any:
        if self._client is None:
            from aiobotocore.session import get_session
            from botocore.config import Config

            # Standard retry mode backs off with jitter on throttling and connection errors.
            config = Config(retries={"max_attempts": self._retries, "mode": "standard"}, connect_timeout=5)
            session = get_session()
            self._client = await self._stack.enter_async_context(
                session.create_client("s3", config=config, **self._client_args)
            )
        return self._client

    def _locate(self, key: str) -> tuple[str, str]:
        check_key(key)
        if self.bucket is not None:
            return self.bucket, self.prefix + key
        bucket, _, rest = key.partition("/")
        if not rest:
            msg = f"invalid key {key!r} for {self.url}: the first part names the bucket"
            raise StoreError(msg, key=key)
        return bucket, rest

    def _key_of(self, bucket: str, s3key: str) -> str:
        return s3key[len(self.prefix) :] if self.bucket is not None else f"{bucket}/{s3key}"

    async def put(self, key: str, data: bytes) -> None:
        bucket, s3key = self._locate(key)
        s3 = await self._s3()
        try:
            await s3.put_object(Bucket=bucket, Key=s3key, Body=data)
        except Exception as e:
            if _code(e) != "NoSuchBucket":
                raise _wrap(e, "write", key) from e
            await self._create_bucket(s3, bucket)
            try:
                await s3.put_object(Bucket=bucket, Key=s3key, Body=data)
            except Exception as e2:
                raise _wrap(e2, "write", key) from e2

    async def _create_bucket(self, s3: Any, bucket: str) -> None:
        # Concurrent puts may all see NoSuchBucket: one creates, the others wait and retry.
        async with self._bucket_lock:
            if bucket in self._made:
                return
            try:
                await s3.create_bucket(Bucket=bucket)
            except Exception as e:
                if _code(e) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise _wrap(e, "create bucket for", bucket) from e
            self._made.add(bucket)

    async def get(self, key: str) -> bytes:
        bucket, s3key = self._locate(key)
        s3 = await self._s3()
        try:
            resp = await s3.get_object(Bucket=bucket, Key=s3key)
            async with resp["Body"] as body:
                data: bytes = await body.read()
                return data
        except Exception as e:
            if _code(e) in _MISSING | {"NoSuchBucket"}:
                msg = f"no object {key!r} in {self.url}"
                raise ObjectNotFound(msg, key=key) from None
            raise _wrap(e, "read", key) from e

    async def head(self, key: str) -> ObjectInfo | None:
        bucket, s3key = self._locate(key)
        s3 = await self._s3()
        try:
            resp = await s3.head_object(Bucket=bucket, Key=s3key)
        except Exception as e:
            if _code(e) in _MISSING | {"NoSuchBucket"}:
                return None
            raise _wrap(e, "stat", key) from e
        return ObjectInfo(key, int(resp["ContentLength"]), resp["LastModified"])

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        if self.bucket is not None:
            bucket, s3prefix = self.bucket, self.prefix + prefix
        else:
            bucket, _, s3prefix = prefix.partition("/")
        s3 = await self._s3()
        paginator = s3.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(Bucket=bucket, Prefix=s3prefix):
                for obj in page.get("Contents", []):
                    yield ObjectInfo(self._key_of(bucket, obj["Key"]), int(obj["Size"]), obj["LastModified"])
        except Exception as e:
            if _code(e) == "NoSuchBucket":
                return
            raise _wrap(e, "list", prefix) from e

    async def delete(self, key: str) -> None:
        bucket, s3key = self._locate(key)
        s3 = await self._s3()
        try:
            await s3.delete_object(Bucket=bucket, Key=s3key)
        except Exception as e:
            if _code(e) not in _MISSING | {"NoSuchBucket"}:
                raise _wrap(e, "delete", key) from e

    async def delete_prefix(self, prefix: str) -> int:
        keys = [info.key async for info in self.list(prefix)]
        s3 = await self._s3()
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            chunk = [self._locate(k) for k in keys[start : start + 1000]]
            by_bucket: dict[str, list[dict[str, str]]] = {}
            for bucket, s3key in chunk:
                by_bucket.setdefault(bucket, []).append({"Key": s3key})
            for bucket, objects in by_bucket.items():
                try:
                    await s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
                except Exception as e:
                    raise _wrap(e, "delete under", prefix) from e
        return len(keys)

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _code(e: Exception) -> str:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _wrap(e: Exception, what: str, key: str) -> StoreError:
    detail = _code(e) or type(e).__name__
    msg = f"S3 could not {what} {key!r}: {detail}: {e}"
    return StoreError(msg, key=key)
