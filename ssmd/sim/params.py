"""Validation of WebSocket command parameters, mapping each defect to Kalshi's error code."""

from __future__ import annotations

from typing import Any

from ssmd.kalshi.protocol import ERROR_MESSAGES, Channel, ErrorCode
from ssmd.sim.model import MarketModel


class CommandError(Exception):
    """A command is refused with ``code``; nothing it asked for has been done."""

    def __init__(self, code: ErrorCode) -> None:
        super().__init__(ERROR_MESSAGES[code])
        self.code = code


def _strings(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise CommandError(ErrorCode.INVALID_PARAMETER)
    return value


def market_spec(params: dict[str, Any], model: MarketModel) -> list[str] | None:
    """Tickers named by ``market_ticker`` XOR ``market_tickers`` (or market ids), None if none given."""
    single, many = params.get("market_ticker"), params.get("market_tickers")
    one_id, ids = params.get("market_id"), params.get("market_ids")
    given = [v for v in (single, many, one_id, ids) if v is not None]
    if len(given) > 1:
        raise CommandError(ErrorCode.INVALID_PARAMETER)
    if not given:
        return None
    if single is not None or one_id is not None:
        value = single if single is not None else one_id
        if not isinstance(value, str) or not value:
            raise CommandError(ErrorCode.INVALID_PARAMETER)
        names = [value]
    else:
        names = _strings(many if many is not None else ids)
    if single is not None or many is not None:
        return names
    by_id = {m.market_id: m.ticker for m in model.market_list}
    if any(i not in by_id for i in names):
        raise CommandError(ErrorCode.INVALID_PARAMETER)
    return [by_id[i] for i in names]


def optional_bool(params: dict[str, Any], name: str) -> bool:
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise CommandError(ErrorCode.INVALID_PARAMETER)
    return value


def one_sid(params: dict[str, Any]) -> int:
    """The single subscription of an ``update_subscription`` (``sid``, or ``sids`` of length 1)."""
    if ("sid" in params) == ("sids" in params):
        raise CommandError(ErrorCode.ONE_SID_REQUIRED)
    value = params["sid"] if "sid" in params else params["sids"]
    if isinstance(value, list):
        if len(value) != 1:
            raise CommandError(ErrorCode.ONE_SID_REQUIRED)
        value = value[0]
    if not isinstance(value, int) or isinstance(value, bool):
        raise CommandError(ErrorCode.INVALID_PARAMETER)
    return value


def validate_channel_params(channel: str, params: dict[str, Any]) -> None:
    """Channel-specific required parameters (codes 19-24, 28)."""
    if channel == Channel.COMMUNICATIONS:
        factor, key = params.get("shard_factor"), params.get("shard_key")
        if key is not None and factor is None:
            raise CommandError(ErrorCode.SHARD_FACTOR_REQUIRED)
        if factor is not None:
            if not isinstance(factor, int) or factor <= 0:
                raise CommandError(ErrorCode.SHARD_FACTOR_POSITIVE)
            if factor > 100:
                raise CommandError(ErrorCode.SHARD_FACTOR_MAX)
            if key is not None and (not isinstance(key, int) or not 0 <= key < factor):
                raise CommandError(ErrorCode.SHARD_KEY_RANGE)
    elif channel in (Channel.CFBENCHMARKS_VALUE, Channel.CFBENCHMARKS_VALUE_5HZ) and not params.get("index_ids"):
        raise CommandError(ErrorCode.INDEX_IDS_REQUIRED)
    elif channel == Channel.PYTH_VALUE and not params.get("underlying_tickers"):
        raise CommandError(ErrorCode.UNDERLYING_TICKERS_REQUIRED)
