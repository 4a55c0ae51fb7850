"""Manifests: the JSON that says, without opening data files, what an archive directory holds.

Every manifest has the seed's fields: ``feed``, ``date``, ``data_type``, ``schema_version``, ``status``
(``partial`` | ``complete``), ``record_count``, ``byte_size``, ``first_timestamp``, ``last_timestamp``
(receive times), ``gaps``, ``quality_score``, ``connector_version``, ``created_at``; and ssmd's:
``condition`` (available | degraded | pending | missing, see :mod:`ssmd.archive.quality`),
``last_modified``, ``quality_formula``. Three shapes:

- a **file manifest** (``.../{ticker}/manifest.json``) describes one data file (``data_key``,
  ``ticker``) and carries that ticker-day's gaps; its writer is the one owner of the ticker;
- a **directory manifest** (``.../{type}/YYYY/MM/DD/manifest.json`` and the raw day's
  ``manifest.json``) adds ``entries``: one summary per ticker (normalized) or per hour file (raw).
  Its totals are sums, its ``quality_score`` the mean over entries, its ``status`` complete only when
  every entry is, its ``condition`` the worst entry's.

Manifests are rewritten whole after the data they describe is uploaded, never appended.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ssmd.archive import quality
from ssmd.archive.spool import COMPLETE, PARTIAL, SpoolFile
from ssmd.archive.timefmt import iso_ns
from ssmd.errors import DecodeError
from ssmd.records import Gap

QUALITY_FORMULA = "coverage*sequence/v1"
"""Names the formula of :func:`ssmd.archive.quality.quality_score`; bumped if it ever changes."""

REQUIRED = (
    "feed", "date", "data_type", "schema_version", "status", "record_count", "byte_size", "first_timestamp",
    "last_timestamp", "gaps", "quality_score", "connector_version", "created_at", "condition", "last_modified",
)
ENTRY_FIELDS = (
    "status", "condition", "quality_score", "record_count", "byte_size", "first_timestamp", "last_timestamp",
    "gap_count", "last_modified", "data_key",
)


def file_manifest(
    f: SpoolFile, *, feed: str, date: str, data_type: str, schema_version: str | None, gaps: Sequence[Gap],
    window: tuple[int, int], connector_version: str, ticker: str | None = None,
) -> dict[str, Any]:
    """The manifest of one data file ``f`` as last built; ``window`` is the quality window (ns)."""
    score = quality.quality_score(gaps, window[0], window[1], f.records)
    out: dict[str, Any] = {
        "feed": feed, "date": date, "data_type": data_type, "schema_version": schema_version,
        "status": f.status, "condition": quality.condition(f.status, f.records, score),
        "record_count": f.records, "byte_size": f.size,
        "first_timestamp": None if f.first_ns is None else iso_ns(f.first_ns),
        "last_timestamp": None if f.last_ns is None else iso_ns(f.last_ns),
        "gaps": [quality.gap_json(g) for g in sorted(gaps, key=lambda g: (g.start_ns, g.kind))],
        "quality_score": score, "quality_formula": QUALITY_FORMULA,
        "connector_version": connector_version,
        "created_at": iso_ns(f.created_ns), "last_modified": iso_ns(f.modified_ns),
        "data_key": f.key,
    }
    if ticker is not None:
        out["ticker"] = ticker
    return out


def entry_of(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The summary of a file manifest that a directory manifest keeps."""
    entry = {k: manifest.get(k) for k in ENTRY_FIELDS if k != "gap_count"}
    entry["gap_count"] = len(manifest.get("gaps", ()))
    return entry


def directory_manifest(
    entries: Mapping[str, Mapping[str, Any]], *, feed: str, date: str, data_type: str,
    schema_version: str | None, connector_version: str, created_at: str, now_ns: int,
    closed: bool, gaps: Sequence[Gap] = (), score: float | None = None,
) -> dict[str, Any]:
    """A directory manifest over ``entries`` (name -> :func:`entry_of` summary).

    ``closed``: the day is over for the writer, so the directory is complete once every entry is.
    ``score`` overrides the mean of the entries' scores (the raw day computes its own from ``gaps``).
    """
    values = list(entries.values())
    firsts = [e["first_timestamp"] for e in values if e.get("first_timestamp")]
    lasts = [e["last_timestamp"] for e in values if e.get("last_timestamp")]
    status = COMPLETE if closed and all(e["status"] == COMPLETE for e in values) else PARTIAL
    count = sum(int(e["record_count"]) for e in values)
    if score is None:
        score = round(sum(float(e["quality_score"]) for e in values) / len(values), 6) if values else 1.0
    cond = quality.worst([quality.condition(status, count, score), *(e["condition"] for e in values)])
    return {
        "feed": feed, "date": date, "data_type": data_type, "schema_version": schema_version,
        "status": status, "condition": cond, "record_count": count,
        "byte_size": sum(int(e["byte_size"]) for e in values),
        "first_timestamp": min(firsts) if firsts else None, "last_timestamp": max(lasts) if lasts else None,
        "gaps": [quality.gap_json(g) for g in sorted(gaps, key=lambda g: (g.start_ns, g.kind))],
        "quality_score": score, "quality_formula": QUALITY_FORMULA,
        "connector_version": connector_version, "created_at": created_at, "last_modified": iso_ns(now_ns),
        "entries": {name: dict(entries[name]) for name in sorted(entries)},
    }


def dumps(manifest: Mapping[str, Any]) -> bytes:
    return json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"


def loads(blob: bytes, key: str) -> dict[str, Any]:
    """A manifest read back; DecodeError naming ``key`` if it is not one."""
    try:
        manifest = json.loads(blob)
    except (ValueError, UnicodeDecodeError) as e:
        msg = f"manifest {key!r} is not JSON: {e}"
        raise DecodeError(msg) from e
    if not isinstance(manifest, dict):
        msg = f"manifest {key!r} is not a JSON object"
        raise DecodeError(msg)
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        msg = f"manifest {key!r} lacks {', '.join(missing)}"
        raise DecodeError(msg)
    return manifest


def gaps_of(manifest: Mapping[str, Any]) -> list[Gap]:
    """The gaps a manifest lists, as records."""
    return [quality.gap_from_json(g) for g in manifest.get("gaps", ())]
