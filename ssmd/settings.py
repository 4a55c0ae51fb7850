"""Every ssmd setting, declared once: type, default, ``SSMD_*`` environment variable, ``--flag`` and doc.

The CLI, the Faust app, docker/compose and the tests all read settings through :meth:`Settings.load`.
Precedence: an explicit override (a CLI flag) beats the environment variable, which beats the default.
A missing or invalid value raises :class:`~ssmd.errors.ConfigError` whose message is one line naming
the setting, its source and the reason; the CLI prints exactly that line.

A ``None`` default for a server URL means "the embedded server": ``ssmd demo`` and ``ssmd dev up``
start it and fill the URL in.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ssmd import names
from ssmd.errors import ConfigError, InvalidNameError

ENV_PREFIX = "SSMD_"
KALSHI_PROD_WS = "wss://external-api-ws.kalshi.com/trade-api/ws/v2"
KALSHI_PROD_REST = "https://external-api.kalshi.com/trade-api/v2"


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in schemes:
            msg = f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}"
            raise ValueError(msg)
        return value

    return parse


def _nats_urls(value: str) -> str:
    # Faust's broker list syntax: several servers separated by ';' (or ',').
    for part in value.replace(",", ";").split(";"):
        _url("nats", "tls")(part.strip() if "://" in part else f"nats://{part.strip()}")
    return value


def _positive_int(value: str) -> int:
    n = int(value)
    if n <= 0:
        msg = "must be a positive integer"
        raise ValueError(msg)
    return n


def _positive_float(value: str) -> float:
    x = float(value)
    if not x > 0:
        msg = "must be a positive number"
        raise ValueError(msg)
    return x


def _port(value: str) -> int:
    n = int(value)
    if not 1 <= n <= 65535:
        msg = "must be a TCP port, 1-65535"
        raise ValueError(msg)
    return n


def _markets(value: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in value.split(",") if m.strip())


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        msg = "must be one of debug, info, warning, error, critical"
        raise ValueError(msg)
    return level


def _env_name(value: str) -> str:
    try:
        return names.validate_env(value)
    except InvalidNameError as e:
        raise ValueError(str(e)) from e


def setting(default: Any, parse: Callable[[str], Any], doc: str, *, secret: bool = False) -> Any:
    """Declare one setting field; the env var and flag derive from the field name."""
    return field(default=default, metadata={"parse": parse, "doc": doc, "secret": secret})


@dataclass(frozen=True, kw_only=True)
class Settings:
    """ssmd's configuration. Field ``nats_url`` is ``--nats-url`` and ``SSMD_NATS_URL``."""

    env: str = setting("kalshi-dev", _env_name, "environment name: prefix of every key, subject and stream")
    nats_url: str | None = setting(None, _nats_urls, "NATS servers, 'nats://a:4222;b:4222' (default: embedded)")
    redis_url: str | None = setting(None, _url("redis", "rediss", "unix"), "Redis/Valkey URL (default: embedded)")
    store_url: str = setting(
        "file://./ssmd-data", _url("file", "s3"), "object store: file://DIR, s3:// or s3://BUCKET/PREFIX"
    )
    s3_endpoint_url: str | None = setting(None, _url("http", "https"), "S3 endpoint (MinIO, R2, moto)")
    s3_region: str = setting("us-east-1", str, "S3 region")
    s3_access_key_id: str | None = setting(None, str, "S3 access key id (default: AWS credential chain)")
    s3_secret_access_key: str | None = setting(None, str, "S3 secret key (default: AWS chain)", secret=True)
    kalshi_ws_url: str = setting(KALSHI_PROD_WS, _url("ws", "wss"), "Kalshi WebSocket URL")
    kalshi_rest_url: str = setting(KALSHI_PROD_REST, _url("http", "https"), "Kalshi REST base URL")
    kalshi_key_id: str | None = setting(None, str, "Kalshi API key id")
    kalshi_private_key: str | None = setting(
        None, str, "Kalshi RSA private key: a PEM file path, or the PEM text itself", secret=True
    )
    markets: tuple[str, ...] = setting(
        (), _markets, "markets to capture: tickers or series:/event: filters, comma-separated (default: all open)"
    )
    partitions: int = setting(8, _positive_int, "partitions of every ssmd topic (one ticker maps to one)")
    data_dir: str = setting("./.ssmd", str, "working directory of the embedded servers and spools")
    gateway_host: str = setting("127.0.0.1", str, "gateway listen address")
    gateway_port: int = setting(8080, _port, "gateway listen port")
    web_port: int = setting(6066, _port, "worker stats web page port")
    archive_interval: float = setting(30.0, _positive_float, "seconds between archive uploads (status partial)")
    checkpoint_interval: float = setting(
        1.0, _positive_float, "seconds between the normalizer's state checkpoints (bounds what a restart redoes)"
    )
    stale_after: float = setting(30.0, _positive_float, "seconds without any exchange frame before reconnecting")
    log_level: str = setting("INFO", _log_level, "log level")

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Build settings from ``overrides`` (already typed or strings), then ``environ``, then defaults.

        ``None`` in ``overrides`` means "not given". Raises :class:`ConfigError` on an invalid value.
        """
        environ = os.environ if environ is None else environ
        overrides = overrides or {}
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            parse = f.metadata["parse"]
            given = overrides.get(f.name)
            if given is not None:
                source, raw = f"--{flag(f.name)}", given
            elif env_var(f.name) in environ:
                source, raw = env_var(f.name), environ[env_var(f.name)]
            else:
                continue
            if not isinstance(raw, str):
                values[f.name] = raw
                continue
            try:
                values[f.name] = parse(raw)
            except ValueError as e:
                shown = "***" if f.metadata["secret"] else repr(raw)
                msg = f"invalid {source}={shown}: {e}"
                raise ConfigError(msg) from None
        return cls(**values)

    def require(self, *names_: str) -> None:
        """Raise :class:`ConfigError` naming every listed setting that is unset."""
        missing = [n for n in names_ if getattr(self, n) in (None, "", ())]
        if missing:
            listed = ", ".join(f"--{flag(n)} / {env_var(n)}" for n in missing)
            msg = f"missing required setting(s): {listed}"
            raise ConfigError(msg)

    def public(self) -> dict[str, Any]:
        """The settings as a dict with secrets masked, for logs and the stats page."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = "***" if f.metadata["secret"] and value else value
        return out


def env_var(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


def flag(name: str) -> str:
    return name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, only: Iterable[str] | None = None) -> None:
    """Add a ``--flag`` for each setting (all, or those named in ``only``), defaulting to "not given"."""
    wanted = set(only) if only is not None else None
    group = parser.add_argument_group("settings (flag, or the SSMD_* environment variable)")
    for f in dataclasses.fields(Settings):
        if wanted is not None and f.name not in wanted:
            continue
        default = f.default if f.default not in (None, ()) else "unset"
        group.add_argument(
            f"--{flag(f.name)}",
            dest=f.name,
            default=None,
            metavar=f.name.split("_")[-1].upper(),
            help=f"{f.metadata['doc']} [{env_var(f.name)}; default: {default}]",
        )


def from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """Load settings, taking overrides from the flags :func:`add_arguments` added to ``args``."""
    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(Settings)}
    return Settings.load(overrides, environ)
