"""Sources: folders and S3 prefixes whose objects a collection keeps in sync, deletions included.

`kinds` lists and fetches a source's objects; `sync` runs one sync (incremental, exactly once,
with the deletion guard) under the source's catalog lease; `jobs` runs syncs as durable jobs and
schedules them; `api` is what `Cairn` offers (add, list, show, sync, remove).
"""

from __future__ import annotations

from cairn.sources.kinds import ListedObject, SourceReader, reader_for, source_kind
from cairn.sources.sync import GUARD_MIN, GUARD_SHARE, SyncProgress, SyncReport, object_access, run_sync

__all__ = [
    "GUARD_MIN",
    "GUARD_SHARE",
    "ListedObject",
    "SourceReader",
    "SyncProgress",
    "SyncReport",
    "object_access",
    "reader_for",
    "run_sync",
    "source_kind",
]
