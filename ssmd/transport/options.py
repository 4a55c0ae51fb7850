"""Settings of the ``nats://`` transport: connection (servers, credentials, TLS) and tuning.

Each setting is read, in order, from the broker URL's query string (``nats://a:4222;b:4222?creds=/x``;
with several URLs the query of any of them counts), then from an ``SSMD_NATS_*`` environment variable,
then the default below. Faust's own settings keep their meaning where one exists
(``broker_commit_interval``, ``topic_partitions``, ``topic_replication_factor``,
``broker_max_poll_records``): they are read from ``app.conf``, not here.

=====================  ==========================  =========  ==========================================
query key              environment variable        default    meaning
=====================  ==========================  =========  ==========================================
``user``/``password``  SSMD_NATS_USER/_PASSWORD    none       user/password auth (also ``nats://u:p@h``)
``token``              SSMD_NATS_TOKEN             none       token auth
``creds``              SSMD_NATS_CREDS             none       path of a ``.creds`` file (JWT + nkey)
``nkey``               SSMD_NATS_NKEY              none       path of an nkey seed file
``tls``                SSMD_NATS_TLS               false      use TLS with the system CAs
``tls_ca``             SSMD_NATS_TLS_CA            none       CA bundle (implies TLS)
``tls_cert``/``_key``  SSMD_NATS_TLS_CERT/_KEY     none       client certificate and key (mutual TLS)
``name``               SSMD_NATS_NAME              app id     client connection name
``connect_timeout``    SSMD_NATS_CONNECT_TIMEOUT   10.0       the first connection must succeed within this
``heartbeat``          SSMD_NATS_HEARTBEAT         1.0        group heartbeat interval, seconds
``session_timeout``    SSMD_NATS_SESSION_TIMEOUT   6.0        a member silent this long is dropped
``fetch_batch``        SSMD_NATS_FETCH_BATCH       256        messages per pull request per partition
``max_inflight``       SSMD_NATS_MAX_INFLIGHT      4096       unacknowledged publishes before ``send`` waits
``ack_timeout``        SSMD_NATS_ACK_TIMEOUT       5.0        seconds before an unacknowledged publish is retried
``linger``             SSMD_NATS_LINGER            0.01       longest a publish waits to share a write (saturated)
``max_age``            SSMD_NATS_MAX_AGE           0          stream ``max_age`` of user topics, s (0 = none)
``storage``            SSMD_NATS_STORAGE           file       ``file`` or ``memory`` stream storage
``duplicate_window``   SSMD_NATS_DUPLICATE_WINDOW  120.0      ``Nats-Msg-Id`` deduplication window, seconds
=====================  ==========================  =========  ==========================================
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from yarl import URL

from ssmd.errors import ConfigError

_ENV_PREFIX = "SSMD_NATS_"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class NatsOptions:
    """Resolved transport settings; build with :func:`resolve`."""

    servers: tuple[str, ...]
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None
    nkey: str | None = None
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    name: str | None = None
    connect_timeout: float = 10.0
    heartbeat: float = 1.0
    session_timeout: float = 6.0
    fetch_batch: int = 256
    max_inflight: int = 4096
    ack_timeout: float = 5.0
    linger: float = 0.01
    max_age: float = 0.0
    storage: str = "file"
    duplicate_window: float = 120.0
    extra: Mapping[str, str] = field(default_factory=dict)

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect``: servers, auth, TLS, endless reconnects."""
        kw: dict[str, Any] = {
            "servers": list(self.servers),
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 1,
            "name": self.name,
        }
        for key in ("user", "password", "token"):
            if getattr(self, key) is not None:
                kw[key] = getattr(self, key)
        if self.creds:
            kw["user_credentials"] = self.creds
        if self.nkey:
            kw["nkeys_seed"] = self.nkey
        ctx = self.ssl_context()
        if ctx is not None:
            kw["tls"] = ctx
        return kw

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context, or ``None`` when TLS is off."""
        if not (self.tls or self.tls_ca or self.tls_cert):
            return None
        ctx = ssl.create_default_context(cafile=self.tls_ca)
        if self.tls_cert:
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
        return ctx


_FLOATS = ("connect_timeout", "heartbeat", "session_timeout", "ack_timeout", "linger", "max_age", "duplicate_window")
_INTS = ("fetch_batch", "max_inflight")
_STRS = ("user", "password", "token", "creds", "nkey", "tls_ca", "tls_cert", "tls_key", "name", "storage")


def resolve(urls: Sequence[URL | str], *, env: Mapping[str, str] | None = None,
            default_name: str | None = None) -> NatsOptions:
    """Resolve settings from broker URLs (``nats://``/``tls://`` schemes), query strings and env."""
    environ = os.environ if env is None else env
    servers: list[str] = []
    query: dict[str, str] = {}
    for raw in urls:
        url = URL(str(raw))
        if url.scheme not in ("nats", "tls") or not url.host:
            msg = f"broker URL {str(raw)!r} must look like nats://host:port"
            raise ConfigError(msg)
        query.update(url.query)
        servers.append(str(url.with_query(None).with_path("")))

    def get(key: str) -> str | None:
        return query.get(key, environ.get(_ENV_PREFIX + key.upper()))

    values: dict[str, Any] = {"servers": tuple(servers), "name": default_name}
    for key in _STRS:
        if (v := get(key)) is not None:
            values[key] = v
    for key in _FLOATS + _INTS:
        if (v := get(key)) is not None:
            values[key] = _number(key, v, int if key in _INTS else float)
    if (v := get("tls")) is not None:
        values["tls"] = v.lower() in _TRUE
    opts = NatsOptions(**values)
    if opts.storage not in ("file", "memory"):
        msg = f"SSMD_NATS_STORAGE must be 'file' or 'memory', not {opts.storage!r}"
        raise ConfigError(msg)
    if opts.session_timeout <= 2 * opts.heartbeat:
        msg = f"session_timeout ({opts.session_timeout}) must exceed twice heartbeat ({opts.heartbeat})"
        raise ConfigError(msg)
    return opts


def _number(key: str, raw: str, kind: type[float] | type[int]) -> float:
    try:
        value = kind(raw)
    except ValueError:
        msg = f"nats setting {key!r} must be a number, not {raw!r}"
        raise ConfigError(msg) from None
    if value < 0:
        msg = f"nats setting {key!r} must not be negative, got {raw!r}"
        raise ConfigError(msg)
    return value
