"""Record keys as subject tokens, and the one partition function of ssmd.

``partition = fnv1a32(key_token(key)) % partitions`` everywhere: in Faust's producer, in the
server-side ``{{partition(N,k)}}`` transform of public-subject topics (nats-server hashes the token
bytes with FNV-1a 32), and in anything else that shards by key, so one key lands on the same
partition number in every topic with the same partition count.
"""

from __future__ import annotations

from collections.abc import Callable

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
# Printable ASCII except the subject metacharacters and '%' (the escape) stays verbatim.
_VERBATIM = frozenset(b for b in range(0x21, 0x7F) if b not in b".*>%")
_EMPTY_TOKEN = "%"


def default_key_token(key: bytes) -> str:
    """Encode key bytes as one subject token: percent-encoding of ``. * > %``, space and non-ASCII."""
    if not key:
        return _EMPTY_TOKEN
    if all(b in _VERBATIM for b in key):
        return key.decode("ascii")
    return "".join(chr(b) if b in _VERBATIM else f"%{b:02X}" for b in key)


def default_key_from_token(token: str) -> bytes:
    """Inverse of :func:`default_key_token`; raises ``ValueError`` on a malformed token."""
    if token == _EMPTY_TOKEN:
        return b""
    out = bytearray()
    i = 0
    raw = token.encode()
    while i < len(raw):
        if raw[i] == 0x25:
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


#: The codec in use; ``set_key_codec`` swaps it (e.g. for ``ssmd.names``' symbol encoding).
key_token: Callable[[bytes], str] = default_key_token
key_from_token: Callable[[str], bytes] = default_key_from_token


def set_key_codec(encode: Callable[[bytes], str], decode: Callable[[str], bytes]) -> None:
    """Use another reversible key <-> token encoding process-wide (call before the app starts)."""
    global key_token, key_from_token
    key_token, key_from_token = encode, decode


def fnv1a32(data: bytes) -> int:
    """FNV-1a 32-bit, the hash nats-server's ``partition()`` subject-transform function uses."""
    h = _FNV_OFFSET
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def partition_for(key: bytes | None, partitions: int) -> int:
    """Partition of ``key`` among ``partitions``; ``None`` keys go to partition 0."""
    if key is None or partitions <= 1:
        return 0
    return fnv1a32(key_token(key).encode()) % partitions
