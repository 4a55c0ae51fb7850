"""Fault injection: standing faults from :class:`~ssmd.sim.config.FaultConfig` (probabilities and periods,
drawn from an RNG seeded by the simulator's seed) and one-shot faults armed by tests.

One-shot faults are deterministic: ``drop_next(sid=1)`` drops exactly the next sequenced frame of sid 1
on any connection (or on ``conn=...`` only). Frame faults act where a frame is queued for a connection,
after its ``seq`` is assigned, so a dropped frame burns its seq number. Connection-level faults
(:meth:`close_all`, :meth:`send_error`) act on the live connections through the server hooks the
simulator installs.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ssmd.kalshi.protocol import ErrorCode
from ssmd.sim.config import FaultConfig

if TYPE_CHECKING:
    from ssmd.sim.session import Session


class ServerHooks(Protocol):
    """What the server lends the fault controller to act on live connections."""

    def sessions(self) -> list[Session]: ...

    def close(self, session: Session, *, abrupt: bool, code: int, reason: str) -> None: ...

    def flush_soon(self, session: Session) -> None: ...


@dataclass
class Target:
    """Which frame a one-shot fault hits: None matches anything."""

    conn: int | None = None
    sid: int | None = None
    type: str | None = None
    count: int = 1

    def take(self, conn: int, sid: int, type_: str) -> bool:
        if self.count <= 0 or (self.conn is not None and self.conn != conn):
            return False
        if (self.sid is not None and self.sid != sid) or (self.type is not None and self.type != type_):
            return False
        self.count -= 1
        return True


class Faults:
    def __init__(self, config: FaultConfig, seed: int) -> None:
        self.config = config
        self.rng = random.Random(f"faults-{seed}")
        self.hooks: ServerHooks | None = None
        self.pings_stopped = config.stop_pings
        self.delay_s = config.delay
        self.refuse_until = 0.0
        self.refuse_status = 503
        self._drop: list[Target] = []
        self._duplicate: list[Target] = []
        self._reorder: list[Target] = []
        self._terminal: list[tuple[Target, ErrorCode]] = []
        self._reject: deque[int] = deque()
        self._empty_snapshots: list[Target] = []
        self.terminal_code = ErrorCode.BUFFER_OVERFLOW
        """Code of the terminal error :meth:`frame_fate` last decided on."""
        self._update_armed()

    def _update_armed(self) -> None:
        c = self.config
        self.armed = bool(
            c.drop_seq or c.duplicate or c.reorder or c.error25
            or self._drop or self._duplicate or self._reorder or self._terminal
        )

    # -- one-shot arming (tests) -------------------------------------------------------------------

    def drop_next(self, *, sid: int | None = None, conn: int | None = None, type: str | None = None,
                  count: int = 1) -> None:
        """Drop the next ``count`` sequenced frames matching; their seq numbers are burned."""
        self._drop.append(Target(conn, sid, type, count))
        self._update_armed()

    def duplicate_next(self, *, sid: int | None = None, conn: int | None = None, type: str | None = None,
                       count: int = 1) -> None:
        """Send the next matching sequenced frame(s) twice in a row."""
        self._duplicate.append(Target(conn, sid, type, count))
        self._update_armed()

    def reorder_next(self, *, sid: int | None = None, conn: int | None = None, type: str | None = None) -> None:
        """Hold the next matching sequenced frame back until the connection's following frame is sent."""
        self._reorder.append(Target(conn, sid, type, 1))
        self._update_armed()

    def overflow_next(self, *, sid: int | None = None, conn: int | None = None,
                      code: ErrorCode = ErrorCode.BUFFER_OVERFLOW) -> None:
        """Replace the next matching data frame with a terminal error (25, or 10) and stop its sid."""
        self._terminal.append((Target(conn, sid, None, 1), code))
        self._update_armed()

    def empty_next_snapshots(self, count: int = 1, *, conn: int | None = None) -> None:
        """The next ``count`` orderbook snapshots carry no levels and ``market_id: ""``."""
        self._empty_snapshots.append(Target(conn, None, None, count))

    def reject_next_upgrades(self, status: int = 401, count: int = 1) -> None:
        """Refuse the next ``count`` WebSocket upgrades with HTTP ``status`` (e.g. 401 or 400)."""
        self._reject.extend([status] * count)

    def refuse_connections(self, seconds: float, status: int = 503) -> None:
        """Refuse every upgrade with HTTP ``status`` for ``seconds`` from now."""
        self.refuse_until = time.monotonic() + seconds
        self.refuse_status = status

    def stop_pings(self) -> None:
        self.pings_stopped = True

    def resume_pings(self) -> None:
        self.pings_stopped = False

    def set_delay(self, seconds: float) -> None:
        """Hold every frame written from now on for ``seconds`` (0 restores immediate writes)."""
        self.delay_s = seconds

    def close_all(self, *, abrupt: bool = True, code: int = 1001, reason: str = "going away") -> int:
        """Close every live connection: abruptly (TCP abort, 1006 at the client) or with a close frame.

        Returns how many connections were closed.
        """
        sessions = self.hooks.sessions() if self.hooks else []
        for session in sessions:
            self.hooks.close(session, abrupt=abrupt, code=code, reason=reason)  # type: ignore[union-attr]
        return len(sessions)

    def send_error(self, code: ErrorCode, *, conn: int | None = None, sid: int | None = None) -> int:
        """Send error ``code`` on ``sid`` (all sids if None) of matching connections; terminal codes
        (10, 25) stop the sid. Returns the number of error frames sent."""
        sent = 0
        for session in self.hooks.sessions() if self.hooks else []:
            if conn is None or session.conn_id == conn:
                sent += session.inject_error(code, sid)
                self.hooks.flush_soon(session)  # type: ignore[union-attr]
        return sent

    # -- decisions (called by sessions and the server) ---------------------------------------------

    def frame_fate(self, conn: int, sid: int, type_: str) -> str:
        """What happens to a sequenced frame: ``send``, ``drop``, ``duplicate``, ``reorder``, ``terminal``."""
        for target, code in self._terminal:
            if target.take(conn, sid, type_):
                self._terminal = [t for t in self._terminal if t[0].count > 0]
                self._update_armed()
                self.terminal_code = code
                return "terminal"
        for fate, targets in (("drop", self._drop), ("duplicate", self._duplicate), ("reorder", self._reorder)):
            for target in targets:
                if target.take(conn, sid, type_):
                    targets[:] = [t for t in targets if t.count > 0]
                    self._update_armed()
                    return fate
        c, r = self.config, self.rng.random
        if c.error25 and r() < c.error25:
            self.terminal_code = ErrorCode.BUFFER_OVERFLOW
            return "terminal"
        if c.drop_seq and r() < c.drop_seq:
            return "drop"
        if c.duplicate and r() < c.duplicate:
            return "duplicate"
        if c.reorder and r() < c.reorder:
            return "reorder"
        return "send"

    def empty_snapshot(self, conn: int) -> bool:
        for target in self._empty_snapshots:
            if target.take(conn, 0, ""):
                return True
        return bool(self.config.empty_snapshot) and self.rng.random() < self.config.empty_snapshot

    def upgrade_rejection(self) -> int | None:
        """HTTP status to refuse the next upgrade with, or None to let it proceed to auth."""
        if time.monotonic() < self.refuse_until:
            return self.refuse_status
        if self._reject:
            return self._reject.popleft()
        c = self.config
        if c.reject401 and self.rng.random() < c.reject401:
            return 401
        if c.reject400 and self.rng.random() < c.reject400:
            return 400
        return None
