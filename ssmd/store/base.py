"""The object-store interface every archive writer and reader uses.

Keys are full ssmd keys from :mod:`ssmd.names` (``ssmd-raw/{env}/...``); a store maps them onto its
medium (a directory tree, or S3 buckets) without changing their layout.

Contract, for every implementation:

- ``put`` writes a whole object atomically: a reader sees the old object or the new one, never a
  part. Writing the same bytes twice is harmless (idempotent), which is what lets archivers retry.
- ``get`` of a missing key raises :class:`ObjectNotFound`; other failures raise
  :class:`~ssmd.errors.StoreError` naming the key.
- ``list`` yields every object under a prefix, in key order, including "sub-directories".
- ``delete`` of a missing key is not an error; ``delete_prefix`` returns how many objects it removed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from ssmd.errors import StoreError


class ObjectNotFound(StoreError):
    """The key names no object."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: dt.datetime


class ObjectStore(Protocol):
    url: str

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def head(self, key: str) -> ObjectInfo | None: ...

    def list(self, prefix: str) -> AsyncIterator[ObjectInfo]: ...

    async def delete(self, key: str) -> None: ...

    async def delete_prefix(self, prefix: str) -> int: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def check_key(key: str) -> str:
    """Reject keys that could escape a directory store or mean nothing in S3."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        msg = f"invalid object key {key!r}: need non-empty '/'-separated parts, no '.' or '..'"
        raise StoreError(msg, key=key)
    return key
