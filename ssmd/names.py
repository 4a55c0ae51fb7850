"""Every S3 key, NATS subject, stream name, KV bucket and Redis key ssmd uses, built in one place.

Names are built from (env, feed, type, symbol, date) exactly in the seed's patterns:

=============  ====================================================================  ====================
store          pattern                                                               built by
=============  ====================================================================  ====================
S3 raw         ``ssmd-raw/{env}/{feed}/YYYY/MM/DD/{type}-HH.jsonl.zst``              :func:`raw_key`
S3 normalized  ``ssmd-normalized/{env}/{feed}/v1/{type}/YYYY/MM/DD/{ticker}/data.capnp.zst``  :func:`normalized_key`
NATS           ``{env}.{feed}.{type}.{symbol-token}``                                :func:`subject`
Redis          ``{env}:{feed}:{type}:{key}``                                         :func:`redis_key`
=============  ====================================================================  ====================

Kalshi tickers contain ``.`` (``KXGOLDH-26AUG2711-T4615.99``), which NATS reads as a token separator,
so a symbol becomes a subject token through :func:`symbol_token`, a reversible percent-style escape:
``%`` becomes ``%25``, and ``.``, ``*``, ``>``, whitespace, control and non-ASCII characters become
``%XX`` per UTF-8 byte. Every other character is kept, so ordinary tickers read unchanged
(``KXGOLDH-26AUG2711-T4615%2E99``) and :func:`symbol_from_token` inverts it exactly.

Nothing outside this module formats these strings; every function validates its parts and raises
:class:`~ssmd.errors.InvalidNameError` with the offending value.
"""

from __future__ import annotations

import datetime as dt
import re

from ssmd.errors import InvalidNameError

RAW_BUCKET = "ssmd-raw"
NORMALIZED_BUCKET = "ssmd-normalized"
NORMALIZED_VERSION = "v1"
MANIFEST = "manifest.json"
RESYNC = "resync"
"""The type token of resync requests, ``{env}.{feed}.resync.{symbol-token}``: core NATS messages by which a
normalizer asks the capture, wherever it runs, for a fresh snapshot of one market (never stored)."""

_ENV_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_FEED_RE = _ENV_RE
_TYPE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")
# Characters kept verbatim in a subject token: printable ASCII except the escape and NATS specials.
_TOKEN_SAFE = frozenset(chr(c) for c in range(0x21, 0x7F)) - {"%", ".", "*", ">"}
_TOKEN_RE = re.compile(r"^(?:[^%.*>\s]|%[0-9A-F]{2})+$")
_MAX_SYMBOL = 200


def validate_env(env: str) -> str:
    """Return ``env`` if it is a valid environment name: lowercase letters, digits and inner ``-``."""
    if not isinstance(env, str) or not _ENV_RE.match(env):
        msg = (
            f"invalid environment name {env!r}: use 1-64 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit (e.g. 'kalshi-dev')"
        )
        raise InvalidNameError(msg)
    return env


def validate_feed(feed: str) -> str:
    """Return ``feed`` if valid (same rule as env names)."""
    if not isinstance(feed, str) or not _FEED_RE.match(feed):
        msg = f"invalid feed name {feed!r}: use lowercase letters, digits and '-'"
        raise InvalidNameError(msg)
    return feed


def validate_type(type_: str) -> str:
    """Return ``type_`` if it is a valid data type name (lowercase letters, digits, ``_``, ``-``)."""
    if not isinstance(type_, str) or not _TYPE_RE.match(type_):
        msg = f"invalid data type {type_!r}: use lowercase letters, digits, '_' and '-'"
        raise InvalidNameError(msg)
    return type_


def validate_symbol(symbol: str) -> str:
    """Return ``symbol`` if it can be a path component and key part.

    A symbol is 1-200 printable, non-space characters without ``/``, and is not ``.`` or ``..``.
    """
    if (
        not isinstance(symbol, str)
        or not 0 < len(symbol) <= _MAX_SYMBOL
        or "/" in symbol
        or symbol in (".", "..")
        or any(not ch.isprintable() or ch.isspace() for ch in symbol)
    ):
        msg = f"invalid symbol {symbol!r}: need 1-{_MAX_SYMBOL} printable characters, no spaces or '/'"
        raise InvalidNameError(msg)
    return symbol


def symbol_token(symbol: str) -> str:
    """Encode ``symbol`` as one valid NATS subject token (reversible; see module docstring)."""
    if not isinstance(symbol, str) or not symbol:
        msg = f"invalid symbol {symbol!r}: must be a non-empty string"
        raise InvalidNameError(msg)
    out: list[str] = []
    for ch in symbol:
        if ch in _TOKEN_SAFE:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def symbol_from_token(token: str) -> str:
    """Invert :func:`symbol_token`; raise for a string it could not have produced."""
    if not isinstance(token, str) or not _TOKEN_RE.match(token):
        msg = f"invalid symbol token {token!r}"
        raise InvalidNameError(msg)
    raw = bytearray()
    i = 0
    while i < len(token):
        if token[i] == "%":
            raw.append(int(token[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.extend(token[i].encode("ascii"))
            i += 1
    try:
        symbol = raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as e:
        msg = f"invalid symbol token {token!r}: escapes are not UTF-8"
        raise InvalidNameError(msg) from e
    if symbol_token(symbol) != token:  # e.g. '%41' for 'A': not canonical, so not ours
        msg = f"invalid symbol token {token!r}: not in canonical form"
        raise InvalidNameError(msg)
    return symbol


# --- NATS ------------------------------------------------------------------------------------


def subject(env: str, feed: str, type_: str, symbol: str) -> str:
    """``{env}.{feed}.{type}.{symbol-token}``, e.g. ``kalshi-dev.kalshi.trade.KXBTC-25DEC31-B100000``."""
    return f"{subject_prefix(env, feed, type_)}.{symbol_token(symbol)}"


def subject_prefix(env: str, feed: str, type_: str) -> str:
    """``{env}.{feed}.{type}``: the subject of a type without its symbol token."""
    return f"{validate_env(env)}.{validate_feed(feed)}.{validate_type(type_)}"


def resync_subject(env: str, feed: str, symbol: str) -> str:
    """``{env}.{feed}.resync.{symbol-token}``: where a normalizer asks for a fresh snapshot of ``symbol``."""
    return subject(env, feed, RESYNC, symbol)


def resync_wildcard(env: str, feed: str) -> str:
    """``{env}.{feed}.resync.*``: every resync request of the feed (what a capture subscribes to)."""
    return f"{subject_prefix(env, feed, RESYNC)}.*"


def subject_wildcard(env: str, feed: str | None = None, type_: str | None = None) -> str:
    """``{env}.>``, ``{env}.{feed}.>`` or ``{env}.{feed}.{type}.>``: every subject under a prefix."""
    parts = [validate_env(env)]
    if feed is not None:
        parts.append(validate_feed(feed))
        if type_ is not None:
            parts.append(validate_type(type_))
    return ".".join([*parts, ">"])


def symbol_of_subject(subj: str) -> str:
    """The symbol carried by a per-symbol subject (its last token, decoded)."""
    return symbol_from_token(subj.rsplit(".", 1)[-1])


def stream_name(env: str, feed: str, type_: str) -> str:
    """JetStream stream name for one data type: ``{env}_{feed}_{type}``.

    Stream names may not contain ``.``, ``*``, ``>`` or spaces; ``_`` cannot occur in an env or feed
    name, so the env prefix of every stream of an environment is exactly ``{env}_``.
    """
    return f"{stream_prefix(env)}{validate_feed(feed)}_{validate_type(type_)}"


def stream_prefix(env: str) -> str:
    """The prefix shared by every stream and KV bucket of ``env``."""
    return f"{validate_env(env)}_"


def kv_bucket(env: str, what: str) -> str:
    """JetStream KV bucket name ``{env}_{what}`` (``what``: e.g. ``offsets``, ``members``)."""
    return f"{stream_prefix(env)}{validate_type(what)}"


def app_id(env: str, group: str = "") -> str:
    """Faust app id (consumer group) of one of ``env``'s worker groups: ``ssmd-{env}[-{group}]``."""
    return f"ssmd-{validate_env(env)}" + (f"-{validate_type(group)}" if group else "")


# --- Redis -----------------------------------------------------------------------------------


def redis_key(env: str, feed: str, type_: str, key: str) -> str:
    """``{env}:{feed}:{type}:{key}``, e.g. ``kalshi-dev:kalshi:price:KXBTC-25DEC31-B100000``."""
    return f"{validate_env(env)}:{validate_feed(feed)}:{validate_type(type_)}:{validate_symbol(key)}"


def redis_pattern(env: str) -> str:
    """SCAN pattern matching every Redis key of ``env``: ``{env}:*``."""
    return f"{validate_env(env)}:*"


# --- S3 --------------------------------------------------------------------------------------


def _date_path(date: dt.date) -> str:
    if not isinstance(date, dt.date) or isinstance(date, dt.datetime):
        msg = f"invalid date {date!r}: need a datetime.date"
        raise InvalidNameError(msg)
    return f"{date.year:04d}/{date.month:02d}/{date.day:02d}"


def raw_prefix(env: str, feed: str | None = None, date: dt.date | None = None) -> str:
    """``ssmd-raw/{env}/`` or ``ssmd-raw/{env}/{feed}/`` or ``ssmd-raw/{env}/{feed}/YYYY/MM/DD/``."""
    parts = [RAW_BUCKET, validate_env(env)]
    if feed is not None:
        parts.append(validate_feed(feed))
        if date is not None:
            parts.append(_date_path(date))
    return "/".join(parts) + "/"


def raw_key(env: str, feed: str, type_: str, date: dt.date, hour: int) -> str:
    """``ssmd-raw/{env}/{feed}/YYYY/MM/DD/{type}-HH.jsonl.zst`` (hour of receive time, UTC)."""
    if not isinstance(hour, int) or not 0 <= hour <= 23:
        msg = f"invalid hour {hour!r}: need 0-23"
        raise InvalidNameError(msg)
    return f"{raw_prefix(env, feed, date)}{validate_type(type_)}-{hour:02d}.jsonl.zst"


def raw_manifest_key(env: str, feed: str, date: dt.date) -> str:
    """``ssmd-raw/{env}/{feed}/YYYY/MM/DD/manifest.json``."""
    return f"{raw_prefix(env, feed, date)}{MANIFEST}"


def normalized_prefix(
    env: str, feed: str | None = None, type_: str | None = None, date: dt.date | None = None
) -> str:
    """``ssmd-normalized/{env}/``, down to ``ssmd-normalized/{env}/{feed}/v1/{type}/YYYY/MM/DD/``."""
    parts = [NORMALIZED_BUCKET, validate_env(env)]
    if feed is not None:
        parts += [validate_feed(feed), NORMALIZED_VERSION]
        if type_ is not None:
            parts.append(validate_type(type_))
            if date is not None:
                parts.append(_date_path(date))
    return "/".join(parts) + "/"


def normalized_key(env: str, feed: str, type_: str, date: dt.date, ticker: str) -> str:
    """``ssmd-normalized/{env}/{feed}/v1/{type}/YYYY/MM/DD/{ticker}/data.capnp.zst``."""
    return f"{normalized_prefix(env, feed, type_, date)}{validate_symbol(ticker)}/data.capnp.zst"


def normalized_manifest_key(env: str, feed: str, type_: str, date: dt.date, ticker: str | None = None) -> str:
    """The manifest of a ticker-day directory, or (``ticker=None``) of a whole type-day directory."""
    base = normalized_prefix(env, feed, type_, date)
    if ticker is None:
        return f"{base}{MANIFEST}"
    return f"{base}{validate_symbol(ticker)}/{MANIFEST}"


def env_prefixes(env: str) -> list[str]:
    """Every object-store prefix holding ``env``'s data, for teardown."""
    return [raw_prefix(env), normalized_prefix(env)]


def date_path(date: dt.date) -> str:
    """``YYYY/MM/DD``: the date component of every dated key."""
    return _date_path(date)
