"""The open files of an archive writer: loaded from the store on first use, uploaded whole.

A :class:`FileSet` owns a spool directory exclusively: it empties it on creation, because the store,
not the spool, is the recovery source (see :mod:`ssmd.archive.spool`). Uploads run concurrently, up to
``concurrency`` at a time, with compression in worker threads.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from ssmd.archive import manifest as mf
from ssmd.archive.spool import SpoolFile
from ssmd.store import ObjectNotFound, ObjectStore

T = TypeVar("T")


class FileSet:
    def __init__(
        self, store: ObjectStore, spool_dir: str | Path, *, level: int, clock: Callable[[], int], concurrency: int
    ) -> None:
        self.store = store
        self.spool_dir = Path(spool_dir)
        self.level = level
        self.clock = clock
        self.files: dict[str, SpoolFile] = {}
        self._sem = asyncio.Semaphore(concurrency)
        shutil.rmtree(self.spool_dir, ignore_errors=True)
        self.spool_dir.mkdir(parents=True, exist_ok=True)

    async def get(self, key: str) -> bytes | None:
        """The stored object ``key``, or None if there is none."""
        async with self._sem:
            try:
                return await self.store.get(key)
            except ObjectNotFound:
                return None

    async def get_json(self, key: str) -> dict[str, Any] | None:
        blob = await self.get(key)
        return None if blob is None else mf.loads(blob, key)

    async def open_many(self, keys: Iterable[str]) -> list[SpoolFile]:
        """The files ``keys``, loading those not open yet from the store, concurrently."""
        keys = list(keys)
        missing = [k for k in dict.fromkeys(keys) if k not in self.files]
        if missing:
            blobs = await asyncio.gather(*(self.get(k) for k in missing))
            now = self.clock()
            for key, blob in zip(missing, blobs, strict=True):
                if key in self.files:  # another task opened it while we waited
                    continue
                path = self.spool_dir / _spool_name(key)
                if blob is None:
                    self.files[key] = SpoolFile(key, path, now_ns=now)
                else:
                    self.files[key] = await asyncio.to_thread(SpoolFile.from_object, key, path, blob, now_ns=now)
        return [self.files[k] for k in keys]

    async def upload(self, f: SpoolFile, *, complete: bool) -> None:
        """Build ``f`` (compacted and marked complete if ``complete``) and put it whole."""
        async with self._sem:
            blob, version = await asyncio.to_thread(f.build, now_ns=self.clock(), level=self.level, complete=complete)
            await self.store.put(f.key, blob)
        f.uploaded(version, len(blob))

    async def put_json(self, key: str, manifest: dict[str, Any]) -> None:
        async with self._sem:
            await self.store.put(key, mf.dumps(manifest))

    def drop(self, key: str) -> None:
        """Forget a completed file (its object is in the store; a later use reloads it)."""
        f = self.files.pop(key, None)
        if f is not None:
            f.discard()


def _spool_name(key: str) -> str:
    # One flat directory: a tree per ticker-day would cost a mkdir and an rmdir per file.
    return key.replace("%", "%25").replace("/", "%2F")


async def run_all(aws: Iterable[Awaitable[T]]) -> list[T]:
    """Await every awaitable, all of them even if some fail; then raise the first failure."""
    results = await asyncio.gather(*aws, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results  # type: ignore[return-value]
