"""Loading the Kalshi API private key from the ``kalshi_private_key`` setting.

The setting holds either a PEM file path or the PEM text itself (as an environment variable may carry
it, possibly with literal ``\\n`` escapes). The key material never appears in a log line or an error
message; a key file readable by group or others is loaded but logged as a warning.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from ssmd.errors import ConfigError
from ssmd.kalshi.auth import KeyError_, load_private_key

log = logging.getLogger("ssmd.connector")

_SETTING = "--kalshi-private-key / SSMD_KALSHI_PRIVATE_KEY"


def load_key(value: str) -> rsa.RSAPrivateKey:
    """The RSA private key named (path) or held (PEM text) by ``value``; raises :class:`ConfigError`."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        if "\n" not in text and "\\n" in text:
            text = text.replace("\\n", "\n")
        return _parse(text.encode(), "the PEM text given")
    path = Path(text).expanduser()
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as e:
        msg = f"{_SETTING}: cannot read key file {path}: {e.strerror or e}"
        raise ConfigError(msg) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("key file %s is accessible by group/others (mode %o); run: chmod 600 %s",
                    path, stat.S_IMODE(mode), path)
    return _parse(data, f"key file {path}")


def _parse(data: bytes, where: str) -> rsa.RSAPrivateKey:
    try:
        return load_private_key(data)
    except KeyError_ as e:
        # KeyError_ messages come from cryptography and never echo the key bytes.
        msg = f"{_SETTING}: {where} is not a usable RSA private key: {e}"
        raise ConfigError(msg) from None
