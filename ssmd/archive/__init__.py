"""The archive: raw frames and normalized records in the object store, with manifests.

- :mod:`ssmd.archive.raw`: :class:`RawArchiver`, frames -> hourly ``{type}-HH.jsonl.zst`` + day manifest;
- :mod:`ssmd.archive.normalized`: :class:`NormalizedArchiver`, records -> ticker-day ``data.capnp.zst``;
- :mod:`ssmd.archive.manifest` and :mod:`ssmd.archive.quality`: manifests, gaps, quality score (QUALITY.md);
- :mod:`ssmd.archive.reader`: :class:`ArchiveReader`, listing from manifests and reading data back;
- :mod:`ssmd.archive.spool`, :mod:`ssmd.archive.fileset`, :mod:`ssmd.archive.zfile`: the shared
  mechanics (local spool, position watermarks, the object format).

Nothing here depends on Faust: the archiver agents drive these classes (add per input event, flush,
commit what flush returned).
"""

from ssmd.archive.normalized import NormalizedArchiver
from ssmd.archive.raw import RawArchiver
from ssmd.archive.reader import ArchiveReader, TickerDay
from ssmd.archive.spool import Position

__all__ = ["ArchiveReader", "NormalizedArchiver", "Position", "RawArchiver", "TickerDay"]
