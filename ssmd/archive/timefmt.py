"""Times in archive manifests: ISO 8601 UTC with milliseconds and ``Z`` (the seed's format)."""

from __future__ import annotations

import datetime as dt
import functools

NS_PER_DAY = 86_400 * 10**9
NS_PER_HOUR = 3_600 * 10**9
_EPOCH = dt.date(1970, 1, 1)


def iso_ns(ns: int) -> str:
    """``2025-12-14T00:00:01.234Z`` for Unix nanoseconds ``ns`` (truncated to milliseconds)."""
    t = dt.datetime.fromtimestamp(ns // 10**9, dt.UTC)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{ns // 10**6 % 1000:03d}Z"


def day_of(ns: int) -> dt.date:
    """The UTC date of Unix nanoseconds ``ns``."""
    return _date(ns // NS_PER_DAY)


@functools.lru_cache(maxsize=64)
def _date(days: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=days)


def day_start_ns(date: dt.date) -> int:
    return (date - _EPOCH).days * NS_PER_DAY


def hour_of(ns: int) -> int:
    return ns % NS_PER_DAY // NS_PER_HOUR
