"""Settings of one simulator: market model, server, keys, recording and standing faults.

Standing faults (:class:`FaultConfig`) fire by probability or period, seeded, from ``--fault NAME=VALUE``;
tests usually leave them off and trigger one-shot faults through :class:`ssmd.sim.faults.Faults`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from ssmd.errors import ConfigError


@dataclass
class FaultConfig:
    """Standing faults; every one is off by default.

    Probabilities apply per frame (``drop_seq``, ``duplicate``, ``reorder``, ``error25``), per upgrade
    (``reject401``, ``reject400``) or per snapshot (``empty_snapshot``); periods are seconds.
    """

    drop_seq: float = 0.0
    """Drop a sequenced frame (its seq is burned, so the client sees a gap)."""
    duplicate: float = 0.0
    """Send a frame twice."""
    reorder: float = 0.0
    """Hold a frame back and send it after the connection's next frame."""
    delay: float = 0.0
    """Seconds every frame is held before it is written (seconds-old deltas)."""
    stop_pings: bool = False
    """Send no heartbeat pings."""
    empty_pongs: bool = False
    """Answer client pings with empty pongs, as Kalshi is reported to (RFC 6455 says echo the payload;
    clients that match pongs to pings by payload then never see theirs answered)."""
    busy_skips_pings: bool = False
    """Skip a heartbeat ping when data frames were written since the last one (as measured on busy
    Kalshi connections: no pings in 75 s while frames flowed)."""
    close_abrupt: float = 0.0
    """Every so many seconds, drop every connection without a close frame (1006 at the client)."""
    close_frame: float = 0.0
    """Every so many seconds, close every connection with a close frame (1001)."""
    refuse: float = 0.0
    """After each periodic close, refuse upgrades with HTTP 503 for so many seconds."""
    reject401: float = 0.0
    """Refuse a (validly signed) upgrade with HTTP 401."""
    reject400: float = 0.0
    """Refuse an upgrade with HTTP 400."""
    error25: float = 0.0
    """Per data frame: send error 25 (buffer overflow) on its sid instead, then stop the sid."""
    overflow_bytes: int = 0
    """If > 0: a client whose unsent backlog exceeds this many bytes gets error 25 on its data sids
    (which stop) instead of slowing the simulator down (the default, lossless backpressure)."""
    empty_snapshot: float = 0.0
    """Send an orderbook snapshot with no levels and ``market_id: ""`` (as for an expired market)."""
    subpenny: float = 0.0
    """Fraction of markets with sub-penny price grids and fractional sizes."""

    @classmethod
    def parse(cls, specs: list[str]) -> FaultConfig:
        """Build from ``NAME[=VALUE]`` strings; a bare NAME means 1 (on). Raises ``ConfigError``."""
        config = cls()
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        for spec in specs:
            name, _, raw = spec.partition("=")
            name = name.strip().replace("-", "_")
            if name not in kinds:
                msg = f"unknown fault {name!r} (known: {', '.join(sorted(kinds))})"
                raise ConfigError(msg)
            setattr(config, name, _fault_value(name, kinds[name], raw.strip() or "1"))
        return config


def _fault_value(name: str, kind: object, raw: str) -> float | int | bool:
    try:
        if kind in (bool, "bool"):
            if raw.lower() not in ("1", "0", "true", "false", "on", "off"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "on")
        value: float | int = int(raw) if kind in (int, "int") else float(raw)
    except ValueError:
        msg = f"fault {name}={raw!r}: expected a {'flag' if kind in (bool, 'bool') else 'number'}"
        raise ConfigError(msg) from None
    if value < 0:
        msg = f"fault {name}={raw}: must not be negative"
        raise ConfigError(msg)
    if name in _PROBABILITIES and value > 1:
        msg = f"fault {name}={raw}: a probability must be within [0, 1]"
        raise ConfigError(msg)
    return value


_PROBABILITIES = frozenset(
    {"drop_seq", "duplicate", "reorder", "reject401", "reject400", "error25", "empty_snapshot", "subpenny"}
)


@dataclass
class SimConfig:
    """Everything a :class:`~ssmd.sim.simulator.Simulator` needs; the defaults suit tests."""

    markets: int = 20
    """Markets created at start (lifecycle later closes, settles and replaces some)."""
    rate: float = 100.0
    """Messages per second across all markets (what a client subscribed to everything receives);
    0 = no order flow until :meth:`Simulator.step` is called (deterministic tests)."""
    seed: int = 0
    host: str = "127.0.0.1"
    port: int = 0
    legacy_format: bool = False
    """Integer-cents wire format of pre-2026-03-12 recordings instead of dollar/fixed-point strings."""
    keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    """Registered API keys (key id -> public key); empty = one key pair is generated."""
    faults: FaultConfig = field(default_factory=FaultConfig)
    record: bool = False
    """Keep ground truth (frames sent, book changes) in memory."""
    record_dir: Path | None = None
    """Also dump ground truth as JSONL files there (``frames.jsonl``, ``books.jsonl``)."""
    heartbeat_s: float = 10.0
    pong_timeout_s: float | None = None
    """Close a client that has not answered the previous heartbeat ping after this long (off: None)."""
    lifecycle_prob: float = 0.002
    """Share of model steps that are lifecycle transitions rather than order flow."""
    max_batch: int = 512
    """Most messages produced between two socket writes (bounds latency at high rates)."""
    rest_rate_limit: bool = True
    """Token buckets on signed REST requests (Basic tier: 200 read tokens/s, 10 per request)."""
    max_markets_per_sid: int = 500_000
    repeat_subscribe_error: bool = False
    """Older servers' answer to subscribing a channel twice: error 6 "Already subscribed" (instead of
    merging the markets into the existing sid)."""
    allow_unauthenticated: bool = False
    """Late-2025 mode: an upgrade without auth headers is accepted and may use public channels only
    (private ones answer error 9); a present but bad signature still gets 401."""

    def validate(self) -> None:
        if self.markets < 1:
            msg = f"markets must be >= 1, got {self.markets}"
            raise ConfigError(msg)
        if self.rate < 0:
            msg = f"rate must be >= 0 messages/s, got {self.rate}"
            raise ConfigError(msg)
        if not 0 <= self.port <= 65535:
            msg = f"port must be within 0..65535, got {self.port}"
            raise ConfigError(msg)
        if self.heartbeat_s <= 0:
            msg = f"heartbeat interval must be > 0 s, got {self.heartbeat_s}"
            raise ConfigError(msg)
        if self.legacy_format and self.faults.subpenny:
            msg = "the legacy integer-cents format cannot carry sub-penny prices or fractional sizes"
            raise ConfigError(msg)
