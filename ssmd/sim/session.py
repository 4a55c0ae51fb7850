"""One client WebSocket connection: its commands, subscriptions and sequenced frames (sans I/O).

A :class:`Session` turns client commands and model messages into frame texts queued in ``out`` as
``(n, text)``; the server writes the queue. Contract, per the protocol reference:

- sids are per connection, from 1; ``seq`` is per sid, from 1, +1 for every sequenced frame on it
  (snapshots, deltas, trades, lifecycle messages, ``ok`` and ``unsubscribed`` acks on sequenced
  channels, sid-scoped errors); ``subscribed``, ``ticker`` frames and ``list_subscriptions`` replies
  carry none.
- Validation errors answer with Kalshi's code and exact message and change nothing.
- Frame faults apply after ``seq`` is assigned (a dropped frame burns its number).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ssmd.kalshi.protocol import (
    ERROR_MESSAGES,
    MARKET_FILTERED,
    MARKET_SPEC_REQUIRED,
    MARKET_UPDATABLE,
    PRIVATE_CHANNELS,
    SEQUENCED_CHANNELS,
    TERMINAL_ERRORS,
    Channel,
    Command,
    ErrorCode,
    MessageType,
    UpdateAction,
)
from ssmd.sim.faults import Faults
from ssmd.sim.groundtruth import GroundTruth
from ssmd.sim.model import MarketModel
from ssmd.sim.params import CommandError, market_spec, one_sid, optional_bool, validate_channel_params
from ssmd.sim.render import Out, snapshot_body, ticker_body

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_CHANNELS = frozenset(c.value for c in Channel)
_SEQUENCED = frozenset(c.value for c in SEQUENCED_CHANNELS)
_SNAPSHOT = MessageType.ORDERBOOK_SNAPSHOT.value


class Subscription:
    __slots__ = ("channel", "seq", "sequenced", "sid", "skip_ticker_ack", "tickers", "use_yes_price")

    def __init__(self, sid: int, channel: str, tickers: dict[str, None] | None, use_yes_price: bool,
                 skip_ticker_ack: bool) -> None:
        self.sid = sid
        self.channel = channel
        self.tickers = tickers
        """Subscribed markets in order (a dict as an ordered set), or None for all markets."""
        self.use_yes_price = use_yes_price
        self.skip_ticker_ack = skip_ticker_ack
        self.sequenced = channel in _SEQUENCED
        self.seq = 0


class Session:
    def __init__(self, conn_id: int, model: MarketModel, faults: Faults, truth: GroundTruth, *,
                 max_markets: int = 500_000, authenticated: bool = True, repeat_error: bool = False) -> None:
        self.conn_id = conn_id
        self.authenticated = authenticated
        self.repeat_error = repeat_error
        self.frames_written = 0
        """Frames the server wrote to this connection so far (for busy-connection ping skipping)."""
        self.model = model
        self.faults = faults
        self.truth = truth
        self.max_markets = max_markets
        self.subs: dict[int, Subscription] = {}
        self.by_channel: dict[str, list[Subscription]] = {}
        self.next_sid = 1
        self.out: list[tuple[int, str]] = []
        self._held: tuple[int, str] | None = None

    # -- outgoing frames ---------------------------------------------------------------------------

    def _put(self, n: int, text: str, sub: Subscription | None = None, type_: str = "") -> None:
        """Queue a frame; sequenced frames of a sub pass through the fault controller."""
        if sub is not None and self.faults.armed:
            fate = self.faults.frame_fate(self.conn_id, sub.sid, type_)
            if fate == "drop":
                if self.truth.enabled:
                    self.truth.on_dropped(self.conn_id, n, text)
                return
            if fate == "terminal":
                sub.seq -= 1  # the error takes the data frame's seq
                self._terminate(sub, self.faults.terminal_code)
                return
            if fate == "reorder" and self._held is None:
                self._held = (n, text)
                return
            if fate == "duplicate":
                self.out.append((n, text))
        self.out.append((n, text))
        if self._held is not None:
            self.out.append(self._held)
            self._held = None

    def deliver(self, outs: list[Out]) -> None:
        """Queue the model messages this connection's subscriptions select."""
        by_channel, append, faults = self.by_channel, self.out.append, self.faults
        for o in outs:
            subs = by_channel.get(o.channel)
            if not subs:
                continue
            for sub in subs:
                tickers = sub.tickers
                if tickers is not None and o.ticker not in tickers:
                    continue
                body = o.yes_body() if sub.use_yes_price else o.body
                if not sub.sequenced:
                    append((o.n, f'{{"type":"{o.type}","sid":{sub.sid},"msg":{body}}}'))
                    continue
                sub.seq += 1
                text = f'{{"type":"{o.type}","sid":{sub.sid},"seq":{sub.seq},"msg":{body}}}'
                if faults.armed or self._held is not None:
                    self._put(o.n, text, sub, o.type)
                else:
                    append((o.n, text))

    def _frame(self, fields: dict[str, Any]) -> None:
        self._put(0, _encode(fields).decode())

    def _error(self, code: ErrorCode, cmd_id: int | None, sub: Subscription | None = None) -> None:
        fields: dict[str, Any] = {} if cmd_id is None else {"id": cmd_id}
        fields["type"] = MessageType.ERROR.value
        if sub is not None:
            fields["sid"] = sub.sid
            if sub.sequenced:
                sub.seq += 1
                fields["seq"] = sub.seq
        fields["msg"] = {"code": int(code), "msg": ERROR_MESSAGES[code]}
        self._frame(fields)

    def _terminate(self, sub: Subscription, code: ErrorCode) -> None:
        """A terminal error on the sid, which stops it; the client must subscribe again."""
        self._error(code, None, sub)
        self._remove(sub)

    def inject_error(self, code: ErrorCode, sid: int | None) -> int:
        """Send ``code`` on ``sid`` (every sid if None); terminal codes stop the sid. Returns frames sent."""
        subs = [s for s in list(self.subs.values()) if sid is None or s.sid == sid]
        for sub in subs:
            if code in TERMINAL_ERRORS:
                self._terminate(sub, code)
            else:
                self._error(code, None, sub)
        return len(subs)

    def _snapshot(self, sub: Subscription, ticker: str, cmd_id: int | None = None) -> None:
        m = self.model.markets.get(ticker)
        if m is None or self.faults.empty_snapshot(self.conn_id):
            body = snapshot_body(ticker, "", [], [], False, self.model.legacy)
        else:
            yes, no = m.book.copy_levels()
            body = snapshot_body(ticker, m.market_id, yes, no, sub.use_yes_price, self.model.legacy)
        sub.seq += 1
        head = "" if cmd_id is None else f'"id":{cmd_id},'
        self._put(self.model.n, f'{{{head}"type":"{_SNAPSHOT}","sid":{sub.sid},"seq":{sub.seq},"msg":{body}}}',
                  sub, _SNAPSHOT)

    def _initial_tickers(self, sub: Subscription, tickers: list[str]) -> None:
        for ticker in tickers:
            m = self.model.markets.get(ticker)
            if m is not None:
                body = ticker_body(m, self.model.clock(), self.model.legacy)
                self.out.append((self.model.n, f'{{"type":"ticker","sid":{sub.sid},"msg":{body}}}'))

    # -- commands ----------------------------------------------------------------------------------

    def handle(self, message: str | bytes) -> None:
        """Process one client frame; every outcome, including errors, is queued in ``out``."""
        cmd_id: int | None = None
        try:
            if isinstance(message, bytes):
                raise CommandError(ErrorCode.UNABLE_TO_PROCESS)  # Kalshi speaks JSON text frames only
            try:
                request = _decode(message)
            except msgspec.DecodeError:
                raise CommandError(ErrorCode.UNABLE_TO_PROCESS) from None
            if not isinstance(request, dict):
                raise CommandError(ErrorCode.UNABLE_TO_PROCESS)
            raw_id = request.get("id")
            if isinstance(raw_id, int) and not isinstance(raw_id, bool) and raw_id != 0:
                cmd_id = raw_id
            cmd = request.get("cmd")
            if not isinstance(cmd, str):
                raise CommandError(ErrorCode.UNABLE_TO_PROCESS)
            if cmd == Command.LIST_SUBSCRIPTIONS:
                self._frame({**({} if cmd_id is None else {"id": cmd_id}), "type": "ok",
                             "msg": [{"channel": s.channel, "sid": s.sid} for s in self.subs.values()]})
                return
            handler = {
                Command.SUBSCRIBE: self._subscribe,
                Command.UNSUBSCRIBE: self._unsubscribe,
                Command.UPDATE_SUBSCRIPTION: self._update,
            }.get(cmd)  # type: ignore[call-overload]
            if handler is None:
                raise CommandError(ErrorCode.UNKNOWN_COMMAND)
            params = request.get("params")
            if params is None:
                raise CommandError(ErrorCode.PARAMS_REQUIRED)
            if not isinstance(params, dict):
                raise CommandError(ErrorCode.INVALID_PARAMETER)
            handler(cmd_id, params)
        except CommandError as e:
            self._error(e.code, cmd_id)

    def _subscribe(self, cmd_id: int | None, params: dict[str, Any]) -> None:
        channels = params.get("channels")
        if not channels:
            raise CommandError(ErrorCode.CHANNELS_REQUIRED)
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise CommandError(ErrorCode.INVALID_PARAMETER)
        if any(c not in _CHANNELS for c in channels):
            raise CommandError(ErrorCode.UNKNOWN_CHANNEL)
        if not self.authenticated and any(c in PRIVATE_CHANNELS for c in channels):
            raise CommandError(ErrorCode.AUTH_REQUIRED)
        tickers = market_spec(params, self.model)
        use_yes = optional_bool(params, "use_yes_price")
        skip_ack = optional_bool(params, "skip_ticker_ack")
        initial = optional_bool(params, "send_initial_snapshot")
        for channel in channels:
            if channel in MARKET_SPEC_REQUIRED and tickers is None:
                raise CommandError(ErrorCode.MARKET_TICKER_REQUIRED)
            validate_channel_params(channel, params)
        if tickers is not None and len(tickers) > self.max_markets:
            raise CommandError(ErrorCode.MARKET_LIMIT)
        if self.repeat_error and any(c in self.by_channel and self.by_channel[c] for c in channels):
            raise CommandError(ErrorCode.ALREADY_SUBSCRIBED)
        for channel in dict.fromkeys(channels):
            wanted = tickers if channel in MARKET_FILTERED else None
            existing = next((s for s in self.subs.values() if s.channel == channel), None)
            if existing is not None:
                self._add_markets(cmd_id, existing, wanted or [], initial, skip_ack)
                continue
            sub = Subscription(self.next_sid, channel, None if wanted is None else dict.fromkeys(wanted),
                               use_yes, skip_ack)
            self.next_sid += 1
            self.subs[sub.sid] = sub
            self.by_channel.setdefault(channel, []).append(sub)
            self._frame({**({} if cmd_id is None else {"id": cmd_id}), "type": MessageType.SUBSCRIBED.value,
                         "msg": {"channel": channel, "sid": sub.sid}})
            if channel == Channel.ORDERBOOK_DELTA:
                for ticker in sub.tickers or ():
                    self._snapshot(sub, ticker)
            elif channel == Channel.TICKER and initial and wanted:
                self._initial_tickers(sub, wanted)

    def _add_markets(self, cmd_id: int | None, sub: Subscription, tickers: list[str], initial: bool,
                     skip_ack: bool) -> None:
        """Merge markets into an existing sid: ``ok`` (sequenced), then snapshots of the new ones only."""
        new = [t for t in dict.fromkeys(tickers) if sub.tickers is not None and t not in sub.tickers]
        if sub.tickers is not None and len(sub.tickers) + len(new) > self.max_markets:
            raise CommandError(ErrorCode.MARKET_LIMIT)
        if sub.tickers is not None:
            sub.tickers.update(dict.fromkeys(new))
        self._ok(cmd_id, sub, skip_ack)
        if sub.channel == Channel.ORDERBOOK_DELTA:
            for ticker in new:
                self._snapshot(sub, ticker)
        elif sub.channel == Channel.TICKER and initial:
            self._initial_tickers(sub, new)

    def _ok(self, cmd_id: int | None, sub: Subscription, skip_ack: bool) -> None:
        fields: dict[str, Any] = {} if cmd_id is None else {"id": cmd_id}
        fields["sid"] = sub.sid
        if sub.sequenced:
            sub.seq += 1
            fields["seq"] = sub.seq
        fields["type"] = MessageType.OK.value
        ack = skip_ack or sub.skip_ticker_ack or sub.tickers is None
        fields["msg"] = {} if ack else {"market_tickers": list(sub.tickers or ())}
        self._put(0, _encode(fields).decode(), sub if sub.sequenced else None, MessageType.OK.value)

    def _remove(self, sub: Subscription) -> None:
        del self.subs[sub.sid]
        self.by_channel[sub.channel].remove(sub)

    def _unsubscribe(self, cmd_id: int | None, params: dict[str, Any]) -> None:
        sids = params.get("sids")
        if not sids:
            raise CommandError(ErrorCode.SIDS_REQUIRED)
        if not isinstance(sids, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in sids):
            raise CommandError(ErrorCode.INVALID_PARAMETER)
        if any(s not in self.subs for s in sids):
            raise CommandError(ErrorCode.UNKNOWN_SID)
        for sid in dict.fromkeys(sids):
            sub = self.subs[sid]
            fields: dict[str, Any] = {} if cmd_id is None else {"id": cmd_id}
            fields["sid"] = sid
            if sub.sequenced:
                sub.seq += 1
                fields["seq"] = sub.seq
            fields["type"] = MessageType.UNSUBSCRIBED.value
            self._put(0, _encode(fields).decode(), sub if sub.sequenced else None, MessageType.UNSUBSCRIBED.value)
            self._remove(sub)

    def _update(self, cmd_id: int | None, params: dict[str, Any]) -> None:
        if "action" not in params:
            raise CommandError(ErrorCode.ACTION_REQUIRED)
        sid = one_sid(params)
        sub = self.subs.get(sid)
        if sub is None:
            raise CommandError(ErrorCode.UNKNOWN_SID)
        action = params["action"]
        if action == UpdateAction.GET_SNAPSHOT and sub.channel == Channel.ORDERBOOK_DELTA:
            pass
        elif action not in (UpdateAction.ADD_MARKETS, UpdateAction.DELETE_MARKETS) or \
                sub.channel not in MARKET_UPDATABLE or sub.tickers is None:
            raise CommandError(ErrorCode.UNSUPPORTED_ACTION)
        tickers = market_spec(params, self.model)
        if not tickers:
            raise CommandError(ErrorCode.MARKET_TICKER_REQUIRED)
        skip_ack = optional_bool(params, "skip_ticker_ack")
        if action == UpdateAction.ADD_MARKETS:
            self._add_markets(cmd_id, sub, tickers, optional_bool(params, "send_initial_snapshot"), skip_ack)
        elif action == UpdateAction.DELETE_MARKETS:
            for ticker in tickers:
                sub.tickers.pop(ticker, None)  # type: ignore[union-attr]
            self._ok(cmd_id, sub, skip_ack)
        else:
            for ticker in dict.fromkeys(tickers):
                if sub.tickers is not None and ticker in sub.tickers:
                    self._snapshot(sub, ticker, cmd_id)
