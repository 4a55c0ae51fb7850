"""The one ticker -> partition function, used end to end.

A ticker maps to one partition everywhere: the connector's connection shards, the raw stream, the
normalizer's tables, the normalized stream and the archivers (design.md, "Throughput"), so a batch holds
one partition's tickers in receive order and per-ticker state never moves while the partition count
stays the same.

The hash is FNV-1a (32 bit) over the ticker's NATS subject token (:func:`ssmd.names.symbol_token`),
because that is what nats-server's ``{{partition(N,k)}}`` subject transform hashes when it partitions a
public per-ticker subject: the server and ssmd then agree on every ticker's partition. It is stable
across processes and Python versions (unlike ``hash()``) and cheap.
"""

from __future__ import annotations

import functools

from ssmd.names import symbol_token

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv1a32(text: str) -> int:
    h = _FNV_OFFSET
    for b in text.encode():
        h = ((h ^ b) * _FNV_PRIME) & 0xFFFFFFFF
    return h


@functools.lru_cache(maxsize=1 << 17)
def partition_for(ticker: str, partitions: int) -> int:
    """The partition of ``ticker`` among ``partitions``.

    Cached: it runs for every frame on the capture path, and a market's partition never changes.
    """
    return fnv1a32(symbol_token(ticker)) % partitions
