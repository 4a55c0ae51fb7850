"""RSA-PSS request signing and verification for Kalshi API keys.

Kalshi signs ``timestamp_ms + METHOD + path`` (no separators, path from the API root, never the host or
the query string) with RSA-PSS, SHA-256, MGF1-SHA-256, salt length = digest length (32 bytes), and sends
it base64-encoded in three headers (:data:`~ssmd.kalshi.protocol.HEADER_KEY`, ``-TIMESTAMP``,
``-SIGNATURE``). The same rule covers the WebSocket upgrade (``GET /trade-api/ws/v2``) and REST.

PSS signatures are randomized: two signatures of one message differ, so verification, not comparison,
is the only check. :func:`verify` accepts any salt length (``AUTO``), like Kalshi's verifier appears to.
"""

from __future__ import annotations

import base64
import binascii
import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ssmd.kalshi.protocol import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP

SIGN_PADDING: Final = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
_VERIFY_PADDING: Final = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)

#: Accepted clock skew of a signed request, in ms (measured upstream: past window in (5 s, 30 s],
#: future window in [30 s, 5 min)).
DEFAULT_MAX_PAST_MS: Final = 10_000
DEFAULT_MAX_FUTURE_MS: Final = 60_000


class KeyError_(ValueError):
    """A key file or PEM could not be loaded as the expected RSA key."""


def message_to_sign(timestamp_ms: int | str, method: str, path: str) -> bytes:
    """The signed string; a query string in ``path`` is dropped, as Kalshi requires."""
    return f"{timestamp_ms}{method.upper()}{path.split('?', 1)[0]}".encode()


def sign(private_key: rsa.RSAPrivateKey, timestamp_ms: int | str, method: str, path: str) -> str:
    """Base64 RSA-PSS signature of :func:`message_to_sign`."""
    signature = private_key.sign(message_to_sign(timestamp_ms, method, path), SIGN_PADDING, hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def auth_headers(
    key_id: str, private_key: rsa.RSAPrivateKey, method: str, path: str, *, now_ms: int | None = None
) -> dict[str, str]:
    """The three Kalshi auth headers for one request; build them anew for every request/reconnect."""
    ts = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return {
        HEADER_KEY: key_id,
        HEADER_TIMESTAMP: str(ts),
        HEADER_SIGNATURE: sign(private_key, ts, method, path),
    }


def verify(
    public_key: rsa.RSAPublicKey, signature_b64: str, timestamp_ms: int | str, method: str, path: str
) -> bool:
    """Whether ``signature_b64`` is a valid signature of the request; never raises on bad input."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(
            signature, message_to_sign(timestamp_ms, method, path), _VERIFY_PADDING, hashes.SHA256()
        )
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


class AuthFailure(enum.Enum):
    """Why a signed request was refused; ``value`` is (error code, details) of Kalshi's 401 body."""

    MISSING_HEADERS = ("authentication_error", "MISSING_HEADERS")
    NOT_FOUND = ("authentication_error", "NOT_FOUND")
    BAD_SIGNATURE = ("authentication_error", "INCORRECT_API_KEY_SIGNATURE")
    TIMESTAMP_EXPIRED = ("header_timestamp_expired", "HEADER_TIMESTAMP_EXPIRED")

    def body(self) -> dict[str, dict[str, str]]:
        """The nested 401 body Kalshi's REST API returns (``{"error": {code, message, details}}``)."""
        code, details = self.value
        return {"error": {"code": code, "message": _FAILURE_MESSAGES[self], "details": details}}


_FAILURE_MESSAGES: Final = {
    AuthFailure.MISSING_HEADERS: "authentication headers are missing",
    AuthFailure.NOT_FOUND: "API key not found",
    AuthFailure.BAD_SIGNATURE: "the request signature is invalid",
    AuthFailure.TIMESTAMP_EXPIRED: "the request timestamp is outside the accepted window",
}


@dataclass
class KeyRing:
    """Registered public keys by key id, and the verifier of signed requests."""

    keys: dict[str, rsa.RSAPublicKey]
    max_past_ms: int = DEFAULT_MAX_PAST_MS
    max_future_ms: int = DEFAULT_MAX_FUTURE_MS

    def check(
        self, headers: Mapping[str, str], method: str, path: str, *, now_ms: int | None = None
    ) -> AuthFailure | None:
        """``None`` if the request is validly signed by a registered key, else why not.

        ``headers`` is looked up with the exact header names; pass a case-insensitive mapping (as
        HTTP libraries provide) when the names may arrive in another case.
        """
        key_id, ts, signature = (headers.get(h) for h in (HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE))
        if not key_id or not ts or not signature:
            return AuthFailure.MISSING_HEADERS
        public_key = self.keys.get(key_id)
        if public_key is None:
            return AuthFailure.NOT_FOUND
        if not ts.isdigit():
            return AuthFailure.BAD_SIGNATURE
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        if not (-self.max_past_ms <= int(ts) - now <= self.max_future_ms):
            return AuthFailure.TIMESTAMP_EXPIRED
        if not verify(public_key, signature, ts, method, path):
            return AuthFailure.BAD_SIGNATURE
        return None


def load_private_key(source: Path | str | bytes) -> rsa.RSAPrivateKey:
    """An RSA private key from a PEM file path or PEM bytes (PKCS#1 or PKCS#8, unencrypted)."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        msg = f"not an unencrypted PEM private key: {e}"
        raise KeyError_(msg) from e
    if not isinstance(key, rsa.RSAPrivateKey):
        msg = f"expected an RSA private key, got {type(key).__name__}"
        raise KeyError_(msg)
    return key


def load_public_key(source: Path | str | bytes) -> rsa.RSAPublicKey:
    """An RSA public key from a PEM file path or PEM bytes; a private key PEM yields its public half."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if b"PRIVATE KEY" in data:
        return load_private_key(data).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        msg = f"not a PEM public key: {e}"
        raise KeyError_(msg) from e
    if not isinstance(key, rsa.RSAPublicKey):
        msg = f"expected an RSA public key, got {type(key).__name__}"
        raise KeyError_(msg)
    return key


def generate_private_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """PKCS#1 PEM (``BEGIN RSA PRIVATE KEY``), the format Kalshi's key download uses."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def public_key_pem(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
