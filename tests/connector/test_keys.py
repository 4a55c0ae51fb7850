"""Loading the Kalshi key: path or PEM text, permission warning, precise errors that never show the key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ssmd.connector import Connector
from ssmd.connector.keys import load_key
from ssmd.errors import ConfigError
from ssmd.kalshi.auth import generate_private_key, private_key_pem
from ssmd.settings import Settings


@pytest.fixture(scope="module")
def pem() -> bytes:
    return private_key_pem(generate_private_key())


def _numbers(pem: bytes) -> int:
    return load_key(pem.decode()).private_numbers().d


def test_pem_path_and_text_and_escaped_text_load_the_same_key(pem: bytes, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(pem)
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING, "ssmd.connector"):
        d = load_key(str(path)).private_numbers().d
    assert not caplog.records
    assert d == _numbers(pem)
    assert load_key(pem.decode().replace("\n", "\\n")).private_numbers().d == d  # one-line env var form


def test_key_file_readable_by_others_is_a_warning(pem: bytes, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(pem)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, "ssmd.connector"):
        load_key(str(path))
    assert [r.getMessage() for r in caplog.records] == [
        f"key file {path} is accessible by group/others (mode 644); run: chmod 600 {path}"]


def test_errors_are_precise_and_never_show_the_key(pem: bytes, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read key file .*missing\.pem: No such file or directory"):
        load_key(str(tmp_path / "missing.pem"))
    broken = pem.decode().replace("A", "B", 40)
    with pytest.raises(ConfigError, match=r"the PEM text given is not a usable RSA private key") as e:
        load_key(broken)
    assert broken[40:80] not in str(e.value) and "MII" not in str(e.value)
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path = tmp_path / "ec.pem"
    path.write_bytes(ec_pem)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=r"expected an RSA private key, got ECPrivateKey"):
        load_key(str(path))


def test_connector_requires_key_settings(pem: bytes) -> None:
    with pytest.raises(ConfigError, match=r"--kalshi-key-id / SSMD_KALSHI_KEY_ID"):
        Connector(Settings(kalshi_private_key=pem.decode()), lambda raw, ns, cid: None)
    with pytest.raises(ConfigError, match=r"--kalshi-private-key / SSMD_KALSHI_PRIVATE_KEY"):
        Connector(Settings(kalshi_key_id="k"), lambda raw, ns, cid: None)
    with pytest.raises(ConfigError, match=r"unknown filter"):
        Connector(Settings(kalshi_key_id="k", kalshi_private_key=pem.decode(), markets=("x:y",)),
                  lambda raw, ns, cid: None)
