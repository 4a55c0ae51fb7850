"""Object stores, chosen by URL scheme: ``file://DIR`` (embedded default) and ``s3://``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ssmd.errors import ConfigError
from ssmd.store.base import ObjectInfo, ObjectNotFound, ObjectStore

if TYPE_CHECKING:
    from ssmd.settings import Settings

__all__ = ["ObjectInfo", "ObjectNotFound", "ObjectStore", "open_store"]


def open_store(settings: Settings) -> ObjectStore:
    """The object store ``settings.store_url`` names, configured from ``settings``."""
    url = settings.store_url
    if url.startswith("file://"):
        from ssmd.store.local import FileStore

        return FileStore(url)
    if url.startswith("s3://"):
        from ssmd.store.s3 import S3Store

        return S3Store(
            url,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
        )
    msg = f"unsupported store URL {url!r}: use file://DIR or s3://"
    raise ConfigError(msg)
