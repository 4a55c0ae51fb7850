"""Settings: one declaration, flags beat SSMD_* variables beat defaults, one-line errors."""

from __future__ import annotations

import argparse

import pytest

from ssmd import settings as settings_mod
from ssmd.errors import ConfigError
from ssmd.settings import Settings


def test_defaults_are_the_embedded_setup() -> None:
    s = Settings.load(environ={})
    assert s.env == "kalshi-dev"
    assert s.nats_url is None and s.redis_url is None
    assert s.store_url == "file://./ssmd-data"
    assert s.kalshi_ws_url.startswith("wss://") and s.kalshi_ws_url.endswith("/trade-api/ws/v2")


def test_environment_then_flag_precedence() -> None:
    environ = {"SSMD_ENV": "kalshi-staging", "SSMD_PARTITIONS": "16", "SSMD_MARKETS": "A.B, series:KXBTC ,"}
    s = Settings.load(environ=environ)
    assert (s.env, s.partitions, s.markets) == ("kalshi-staging", 16, ("A.B", "series:KXBTC"))
    s = Settings.load({"env": "kalshi-prod", "partitions": None}, environ=environ)
    assert (s.env, s.partitions) == ("kalshi-prod", 16)


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"SSMD_ENV": "Prod!"}, "invalid SSMD_ENV='Prod!'"),
        ({"SSMD_PARTITIONS": "0"}, "SSMD_PARTITIONS='0': must be a positive integer"),
        ({"SSMD_PARTITIONS": "many"}, "SSMD_PARTITIONS='many'"),
        ({"SSMD_STORE_URL": "ftp://x"}, "expected a URL starting with file:// or s3://"),
        ({"SSMD_NATS_URL": "http://x:4222"}, "SSMD_NATS_URL"),
        ({"SSMD_LOG_LEVEL": "loud"}, "SSMD_LOG_LEVEL"),
        ({"SSMD_WEB_PORT": "0"}, "SSMD_WEB_PORT='0': must be a TCP port, 1-65535"),
        ({"SSMD_GATEWAY_PORT": "http"}, "SSMD_GATEWAY_PORT='http'"),
    ],
)
def test_invalid_values_are_one_clear_line(environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.load(environ=environ)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_secrets_never_echoed() -> None:
    s = Settings.load(environ={"SSMD_S3_SECRET_ACCESS_KEY": "hunter2", "SSMD_KALSHI_KEY_ID": "abc"})
    assert s.public()["s3_secret_access_key"] == "***"
    assert "hunter2" not in repr(s.public())


def test_nats_url_lists() -> None:
    s = Settings.load(environ={"SSMD_NATS_URL": "nats://a:4222;b:4222"})
    assert s.nats_url == "nats://a:4222;b:4222"


def test_require_names_flag_and_variable() -> None:
    with pytest.raises(ConfigError, match="--kalshi-key-id / SSMD_KALSHI_KEY_ID"):
        Settings.load(environ={}).require("kalshi_key_id")


def test_cli_flags_map_one_to_one() -> None:
    parser = argparse.ArgumentParser()
    settings_mod.add_arguments(parser)
    args = parser.parse_args(["--env", "kalshi-cli", "--gateway-port", "9000"])
    s = settings_mod.from_args(args, environ={"SSMD_ENV": "ignored"})
    assert (s.env, s.gateway_port) == ("kalshi-cli", 9000)
    help_text = parser.format_help()
    assert "SSMD_STORE_URL" in help_text and "SSMD_KALSHI_PRIVATE_KEY" in help_text


def test_readme_documents_every_setting() -> None:
    import dataclasses
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for f in dataclasses.fields(Settings):
        assert f"`{settings_mod.env_var(f.name)}`" in readme, f"README lacks {settings_mod.env_var(f.name)}"
        assert f"`--{settings_mod.flag(f.name)}`" in readme
