"""The subscriptions of one exchange connection, as a sans-I/O state machine.

:class:`Subscriptions` knows which markets the connection should carry (``wanted``), which sid each channel
has and which markets the exchange has acknowledged on it, and which commands are in flight. The owner
asks :meth:`Subscriptions.commands` for the commands that move the connection towards ``wanted``, sends
them, and feeds every control frame back through :meth:`Subscriptions.on_control`.

Kalshi facts it relies on (``reference/kalshi-protocol.md`` §2, §3.8):

- one sid per channel per connection (a repeated ``subscribe`` merges into the existing sid), so a
  connection holds one ``orderbook_delta`` sid, one ``trade`` sid (and optionally ``ticker``) for all its
  markets, plus ``market_lifecycle_v2`` on the connection that follows lifecycle;
- ``update_subscription`` names exactly one sid (``sids: [sid]``) with ``action`` inside ``params``;
  ``add_markets`` is acked by ``ok`` and followed by snapshots of the added markets only;
- ``get_snapshot`` re-sends snapshots of the named markets on the same sid (no ``ok``);
- errors 10 and 25 on a sid end it: the markets are subscribed again (new sid, fresh snapshots);
- a refused command (e.g. 26 market limit, 27 too many requests) is retried after a backoff.

At most one command per channel is in flight, so acknowledgements apply in order. Large market lists go
out in chunks of ``chunk`` tickers per command.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ssmd.connector.backoff import Backoff
from ssmd.connector.types import ChannelStatus
from ssmd.kalshi.messages import ErrorBody, Frame, Subscribed
from ssmd.kalshi.protocol import TERMINAL_ERRORS, Channel, Command, ErrorCode, MessageType, UpdateAction

DEFAULT_MARKET_CHANNELS: tuple[str, ...] = (Channel.ORDERBOOK_DELTA.value, Channel.TRADE.value)
LIFECYCLE = Channel.MARKET_LIFECYCLE_V2.value
_ORDERBOOK = Channel.ORDERBOOK_DELTA.value

_decode_subscribed = msgspec.json.Decoder(Frame[Subscribed]).decode
_decode_error = msgspec.json.Decoder(Frame[ErrorBody]).decode


@dataclass
class _Channel:
    name: str
    sid: int | None = None
    tickers: set[str] = field(default_factory=set)
    pending: int | None = None
    retry_at: float = 0.0
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.5, cap=30.0))


@dataclass
class _Pending:
    action: str
    channels: set[str]
    tickers: frozenset[str]


@dataclass
class ControlOutcome:
    """What a control frame changed: ``error`` is a line for ``last_error`` ("" if none)."""

    changed: bool = False
    error: str = ""
    lost: frozenset[str] = frozenset()
    """Markets whose orderbook subscription the exchange ended (they are being subscribed again)."""


class Subscriptions:
    def __init__(self, market_channels: Iterable[str] = DEFAULT_MARKET_CHANNELS, *, lifecycle: bool = False,
                 chunk: int = 500, clock: Callable[[], float] = time.monotonic) -> None:
        self.market_channels = tuple(market_channels)
        self.lifecycle = lifecycle
        self.chunk = chunk
        self.clock = clock
        self.wanted: set[str] = set()
        self.reset()

    def reset(self) -> None:
        """A new connection: no sids, nothing acknowledged, command ids from 1."""
        names = self.market_channels + ((LIFECYCLE,) if self.lifecycle else ())
        self.channels: dict[str, _Channel] = {n: _Channel(n) for n in names}
        self._by_sid: dict[int, _Channel] = {}
        self._pending: dict[int, _Pending] = {}
        self._next_id = 1

    # -- queries -----------------------------------------------------------------------------------

    def subscribed(self, channel: str = _ORDERBOOK) -> frozenset[str]:
        """Markets the exchange has acknowledged on ``channel``."""
        ch = self.channels.get(channel)
        return frozenset(ch.tickers) if ch else frozenset()

    def converged(self) -> bool:
        """Whether every market channel carries exactly ``wanted`` and nothing is in flight."""
        if self._pending:
            return False
        lifecycle_ok = not self.lifecycle or self.channels[LIFECYCLE].sid is not None
        return lifecycle_ok and all(self.channels[c].tickers == self.wanted for c in self.market_channels)

    def next_retry(self) -> float | None:
        """The earliest monotonic time a backed-off channel may be retried, if any is waiting."""
        now = self.clock()
        times = [c.retry_at for c in self.channels.values() if c.retry_at > now]
        return min(times) if times else None

    def status(self) -> list[ChannelStatus]:
        return [ChannelStatus(c.name, c.sid, len(c.tickers), c.pending is not None) for c in self.channels.values()]

    # -- commands ----------------------------------------------------------------------------------

    def _command(self, cmd: str, params: dict[str, Any] | None, pending: _Pending | None) -> dict[str, Any]:
        cid = self._next_id
        self._next_id += 1
        if pending is not None:
            self._pending[cid] = pending
            for name in pending.channels:
                self.channels[name].pending = cid
        out: dict[str, Any] = {"id": cid, "cmd": cmd}
        if params is not None:
            out["params"] = params
        return out

    def commands(self) -> list[dict[str, Any]]:
        """Commands to send now (each registered as in flight) to move towards ``wanted``."""
        now = self.clock()
        out: list[dict[str, Any]] = []
        ready = [self.channels[n] for n in self.market_channels
                 if self.channels[n].pending is None and self.channels[n].retry_at <= now]
        fresh = [c for c in ready if c.sid is None]
        if fresh and self.wanted:
            first = frozenset(sorted(self.wanted)[: self.chunk])
            names = {c.name for c in fresh}
            out.append(self._command(Command.SUBSCRIBE, {"channels": sorted(names), "market_tickers": sorted(first)},
                                     _Pending(Command.SUBSCRIBE, names, first)))
        for ch in ready:
            if ch.sid is None:
                continue
            add, remove = self.wanted - ch.tickers, ch.tickers - self.wanted
            if not self.wanted and ch.tickers:
                out.append(self._command(Command.UNSUBSCRIBE, {"sids": [ch.sid]},
                                         _Pending(Command.UNSUBSCRIBE, {ch.name}, frozenset(ch.tickers))))
            elif add or remove:
                action, tickers = (UpdateAction.ADD_MARKETS, add) if add else (UpdateAction.DELETE_MARKETS, remove)
                part = frozenset(sorted(tickers)[: self.chunk])
                out.append(self._command(
                    Command.UPDATE_SUBSCRIPTION,
                    {"sids": [ch.sid], "market_tickers": sorted(part), "action": action.value},
                    _Pending(action.value, {ch.name}, part)))
        if self.lifecycle:
            lc = self.channels[LIFECYCLE]
            if lc.sid is None and lc.pending is None and lc.retry_at <= now:
                out.append(self._command(Command.SUBSCRIBE, {"channels": [LIFECYCLE]},
                                         _Pending(Command.SUBSCRIBE, {LIFECYCLE}, frozenset())))
        return out

    def snapshot_commands(self, tickers: Iterable[str]) -> tuple[list[dict[str, Any]], frozenset[str]]:
        """``get_snapshot`` commands for those of ``tickers`` acknowledged on the orderbook sid.

        Returns the commands and the tickers they cover. Markets still being added are left out: their
        ``add_markets`` brings a snapshot anyway. Nothing is registered as in flight (no ``ok`` follows).
        """
        ob = self.channels.get(_ORDERBOOK)
        if ob is None or ob.sid is None:
            return [], frozenset()
        covered = sorted(set(tickers) & ob.tickers)
        cmds = [
            self._command(Command.UPDATE_SUBSCRIPTION, {"sids": [ob.sid], "market_tickers": covered[i : i + self.chunk],
                                                        "action": UpdateAction.GET_SNAPSHOT.value}, None)
            for i in range(0, len(covered), self.chunk)
        ]
        return cmds, frozenset(covered)

    # -- replies -----------------------------------------------------------------------------------

    def on_control(self, type_: str, cmd_id: int | None, sid: int | None, raw: bytes) -> ControlOutcome:
        """Apply a ``subscribed``/``ok``/``unsubscribed``/``error`` frame (others are ignored)."""
        if type_ == MessageType.SUBSCRIBED:
            return self._on_subscribed(cmd_id, raw)
        if type_ == MessageType.OK:
            return self._on_ok(cmd_id, sid)
        if type_ == MessageType.UNSUBSCRIBED:
            ch = self._by_sid.get(sid) if sid is not None else None
            if ch is not None:
                self._forget(ch)
            self._settle(cmd_id)
            return ControlOutcome(changed=True)
        if type_ == MessageType.ERROR:
            return self._on_error(cmd_id, sid, raw)
        return ControlOutcome()

    def _settle(self, cmd_id: int | None) -> _Pending | None:
        pending = self._pending.pop(cmd_id, None) if cmd_id is not None else None
        for name in pending.channels if pending else ():
            if self.channels[name].pending == cmd_id:
                self.channels[name].pending = None
        return pending

    def _on_subscribed(self, cmd_id: int | None, raw: bytes) -> ControlOutcome:
        try:
            msg = _decode_subscribed(raw).msg
        except msgspec.DecodeError:
            return ControlOutcome(error="malformed subscribed frame")
        ch = self.channels.get(msg.channel)
        pending = self._pending.get(cmd_id) if cmd_id is not None else None
        if ch is None:
            return ControlOutcome()
        ch.sid = msg.sid
        self._by_sid[msg.sid] = ch
        ch.tickers = set(pending.tickers) if pending is not None else set()
        ch.backoff.reset()
        if ch.pending == cmd_id:
            ch.pending = None
        if pending is not None:
            pending.channels.discard(ch.name)
            if not pending.channels:
                del self._pending[cmd_id]  # type: ignore[arg-type]
        return ControlOutcome(changed=True)

    def _on_ok(self, cmd_id: int | None, sid: int | None) -> ControlOutcome:
        pending = self._settle(cmd_id)
        if pending is None:
            return ControlOutcome()
        for name in pending.channels:
            ch = self.channels[name]
            if sid is not None and ch.sid is None:
                ch.sid = sid  # a subscribe merged into a sid we had lost track of
                self._by_sid[sid] = ch
            if pending.action == UpdateAction.DELETE_MARKETS:
                ch.tickers -= pending.tickers
            else:
                ch.tickers |= pending.tickers
            ch.backoff.reset()
        return ControlOutcome(changed=True)

    def _on_error(self, cmd_id: int | None, sid: int | None, raw: bytes) -> ControlOutcome:
        try:
            body = _decode_error(raw).msg
            code, text = body.code, body.msg
        except msgspec.DecodeError:
            code, text = 0, "malformed error frame"
        error = f"exchange error {code} ({text})"
        pending = self._settle(cmd_id)
        if pending is not None:
            # One retry time for the command's channels, so that they are subscribed together again.
            chans = [self.channels[name] for name in pending.channels]
            retry_at = self.clock() + max((ch.backoff.next() for ch in chans), default=0.0)
            for ch in chans:
                ch.retry_at = retry_at
            return ControlOutcome(changed=True, error=f"{error} for {pending.action} on {sorted(pending.channels)}")
        on_sid = self._by_sid.get(sid) if sid is not None else None
        if on_sid is not None and code in TERMINAL_ERRORS:
            lost = frozenset(on_sid.tickers) if on_sid.name == _ORDERBOOK else frozenset()
            self._forget(on_sid)
            return ControlOutcome(changed=True, error=f"{error} ended sid {sid} ({on_sid.name})", lost=lost)
        if code == ErrorCode.TOO_MANY_REQUESTS and on_sid is not None:
            on_sid.retry_at = self.clock() + on_sid.backoff.next()
        return ControlOutcome(error=error)

    def _forget(self, ch: _Channel) -> None:
        if ch.sid is not None:
            self._by_sid.pop(ch.sid, None)
        ch.sid, ch.tickers = None, set()
