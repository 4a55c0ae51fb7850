"""``file://DIR``: the object store as a directory tree with the same key layout as S3.

Writes go to a temporary file in the target directory, are fsynced, then renamed over the key, so a
crash leaves the old object or the new one. File I/O runs in a worker thread to keep the event loop
free.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlparse

from ssmd.errors import ConfigError, StoreError
from ssmd.store.base import ObjectInfo, ObjectNotFound, check_key


class FileStore:
    """Object store rooted at a local directory (created on first write)."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "file" or not (parsed.netloc or parsed.path):
            msg = f"invalid file store URL {url!r}: use file://DIR (relative: file://./DIR)"
            raise ConfigError(msg)
        self.url = url
        self.root = Path(parsed.netloc + parsed.path).resolve()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, self._path(key), data)

    def _put(self, path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.name)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as e:
            msg = f"cannot write {path}: {e.strerror}"
            raise StoreError(msg, key=str(path)) from e

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            msg = f"no object {key!r} in {self.url}"
            raise ObjectNotFound(msg, key=key) from None
        except OSError as e:
            msg = f"cannot read {key!r} from {self.url}: {e.strerror}"
            raise StoreError(msg, key=key) from e

    async def head(self, key: str) -> ObjectInfo | None:
        return await asyncio.to_thread(self._info, self._path(key), key)

    @staticmethod
    def _info(path: Path, key: str) -> ObjectInfo | None:
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        return ObjectInfo(key, st.st_size, dt.datetime.fromtimestamp(st.st_mtime, dt.UTC))

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        for info in await asyncio.to_thread(self._list, prefix):
            yield info

    def _list(self, prefix: str) -> builtins.list[ObjectInfo]:
        # Walk only the deepest directory the prefix names, then filter by the full prefix.
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        out: builtins.list[ObjectInfo] = []
        if not base.is_dir():
            return out
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                path = Path(dirpath) / name
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    info = self._info(path, key)
                    if info is not None:
                        out.append(info)
        out.sort(key=lambda i: i.key)
        return out

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, self._path(key))

    def _delete(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        # Drop directories the delete left empty, up to the root, so listings stay clean.
        parent = path.parent
        while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    async def delete_prefix(self, prefix: str) -> int:
        count = 0
        async for info in self.list(prefix):
            await self.delete(info.key)
            count += 1
        return count

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
