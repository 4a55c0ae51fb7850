"""Every name the ``nats://`` transport puts on the server: streams, subjects, KV buckets and keys.

This module should move into ``ssmd/names.py`` (the one module that owns every name); until then it
is the only place in ``ssmd.transport`` that formats these strings.

Layout (``T`` is a Faust topic name, ``p`` a partition number, ``A`` the Faust app id):

=================================  ===============================================================
stream of topic ``T``              ``FAUST_<bucket_token(T)>``
partition subject (plain topic)    ``faust.<subject_token(T)>.<p>``
partition subject (keyed topic)    ``faust.<subject_token(T)>.<p>.<key token>`` (compacted
                                   changelogs and public-subject topics: one subject per key)
public-subject topic               a topic whose *name* is a subject pattern with one ``*`` token,
                                   e.g. ``kalshi-dev.kalshi.trade.*``: publishers (Faust or not)
                                   publish to the pattern with the key token in place of ``*``;
                                   the stream's subject transform stores the message under
                                   ``faust.<subject_token(T)>.{{partition(N,k)}}.{{wildcard(k)}}``,
                                   so core subscribers keep seeing the public subject
committed offsets                  KV bucket ``SSMD_OFFSETS_<bucket_token(A)>``, key
                                   ``<kv_token(T)>.<p>``
group membership (liveness)        KV bucket ``SSMD_GROUP_<bucket_token(A)>`` (TTL = session
                                   timeout), keys ``members.<member id>`` and ``leader``
group assignment                   KV bucket ``SSMD_OFFSETS_<...>``, key ``_group.assignment``
dead letters                       subject ``faust-dlq.<subject_token(A)>.<subject_token(T)>``,
                                   stored in stream ``FAUST_DLQ`` (subjects ``faust-dlq.>``)
=================================  ===============================================================
"""

from __future__ import annotations

import base64
import hashlib
import re

SUBJECT_PREFIX = "faust"
STREAM_PREFIX = "FAUST_"
DLQ_PREFIX = "faust-dlq"
DLQ_STREAM = "FAUST_DLQ"

_BUCKET_OK = re.compile(r"[A-Za-z0-9_-]+")
_BUCKET_BAD = re.compile(r"[^A-Za-z0-9_-]")
# Bytes that cannot appear inside one subject token, plus '%' so the encoding stays reversible.
_TOKEN_BAD = re.compile(r"[\s.*>%\x00-\x1f\x7f]")


def subject_token(name: str) -> str:
    """Encode ``name`` into one NATS subject token, reversibly (percent-encoding of ``. * > %``, space)."""
    if not name:
        msg = "an empty name cannot form a subject token"
        raise ValueError(msg)
    return _TOKEN_BAD.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), name)


def bucket_token(name: str) -> str:
    """Encode ``name`` for a stream or bucket name: readable, and injective thanks to a hash suffix."""
    if _BUCKET_OK.fullmatch(name):
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{_BUCKET_BAD.sub('_', name)}_{digest}"


def kv_token(name: str) -> str:
    """Encode ``name`` as a KV key token (base64url without padding, no ``.``)."""
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def stream_name(topic: str) -> str:
    """The JetStream stream that holds Faust topic ``topic``."""
    return STREAM_PREFIX + bucket_token(topic)


def topic_subject_base(topic: str) -> str:
    """Subject prefix of ``topic``'s stored messages; partition ``p`` lives at ``<base>.<p>``."""
    return f"{SUBJECT_PREFIX}.{subject_token(topic)}"


def partition_subject(topic: str, partition: int) -> str:
    """The subject (or, for keyed topics, the subject prefix) of one partition."""
    return f"{topic_subject_base(topic)}.{partition}"


def is_public_pattern(topic: str) -> bool:
    """True if the topic name is a public subject pattern (exactly one ``*`` token, no ``>``)."""
    tokens = topic.split(".")
    return tokens.count("*") == 1 and ">" not in tokens and all(tokens)


def public_subject(topic: str, key_token: str) -> str:
    """The public subject a record with key token ``key_token`` is published to."""
    return ".".join(key_token if t == "*" else t for t in topic.split("."))


def offsets_bucket(app_id: str) -> str:
    """KV bucket holding committed offsets (and the group assignment) of app ``app_id``."""
    return "SSMD_OFFSETS_" + bucket_token(app_id)


def group_bucket(app_id: str) -> str:
    """KV bucket holding group liveness (member heartbeats, the leader lease) of app ``app_id``."""
    return "SSMD_GROUP_" + bucket_token(app_id)


def offset_key(topic: str, partition: int) -> str:
    """KV key of the committed offset of one topic partition."""
    return f"{kv_token(topic)}.{partition}"


ASSIGNMENT_KEY = "_group.assignment"
LEADER_KEY = "leader"


def member_key(member_id: str) -> str:
    """KV key of one member's heartbeat."""
    return f"members.{member_id}"


def dlq_subject(app_id: str, topic: str) -> str:
    """Subject an undecodable message of ``topic`` read by app ``app_id`` is set aside to."""
    return f"{DLQ_PREFIX}.{subject_token(app_id)}.{subject_token(topic)}"
