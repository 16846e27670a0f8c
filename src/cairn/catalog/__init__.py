"""The catalog: what each collection holds, which version of each document is live, and who may see it.

One database shared by every process (API replicas, workers, the CLI): SQLite in ``CAIRN_HOME`` for
the embedded default, PostgreSQL (``CAIRN_CATALOG_URL``) for servers and clusters. The vault stays
the system of record for bytes, chunk files and vectors; the catalog says which of them are live.
`Catalog` is the seam; `SqlCatalog` implements it on both databases, and the conformance suite in
``tests/conformance/test_catalog.py`` holds both to the same contract.
"""

from __future__ import annotations

from cairn.catalog.protocol import Catalog
from cairn.catalog.records import (
    CollectionState,
    DocumentRecord,
    Publication,
    Retention,
    RowSet,
    SourceObject,
    SourceRecord,
    VersionDraft,
    VersionRecord,
)
from cairn.catalog.sql import PendingVersion, SqlCatalog

__all__ = [
    "Catalog",
    "CollectionState",
    "DocumentRecord",
    "PendingVersion",
    "Publication",
    "Retention",
    "RowSet",
    "SourceObject",
    "SourceRecord",
    "SqlCatalog",
    "VersionDraft",
    "VersionRecord",
]
