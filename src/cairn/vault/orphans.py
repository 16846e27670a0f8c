"""Orphan objects: vault objects that no version in the catalog references.

A writer stores a document's original bytes (``blobs/``), reserves the version in the catalog, then
writes its chunk file and version record and publishes. A writer killed between two of these steps
leaves objects behind that nothing will ever read: a blob no version names, or the chunk file and
version record of a version the catalog gave up (`Catalog.abandon`). `cairn verify` reports them and
``--repair`` deletes them, with two safeguards:

- **age**: only objects written more than a grace before the check began count. A writer that is
  still running writes its blob before it reserves the version (and waits for the maintenance lease
  that `verify` holds), so its objects are younger than that; pending versions are in the catalog
  and so are never orphans;
- **retention**: a chunk file or version record of a collection under retention is kept, and so is
  any object the store refuses to delete (an S3 object lock); both are reported as kept.

The catalog is trusted: after losing it, or restoring an older copy, recreate it from the vault's
version records (`cairn rebuild --catalog`) before repairing, or those versions would look orphaned.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from cairn.catalog.protocol import Catalog
from cairn.catalog.records import RowSet
from cairn.errors import StorageError
from cairn.vault.store import Vault

__all__ = ["OrphanKind", "OrphanObject", "delete_orphan", "orphan_objects"]

OrphanKind = Literal["blob", "chunks", "version_record"]
_PAGE = 500  # digests per catalog query


@dataclass(frozen=True)
class OrphanObject:
    """One vault object no catalog version references."""

    key: str
    kind: OrphanKind
    written: float  # Unix seconds
    doc_id: str | None = None
    version: int | None = None


def orphan_objects(vault: Vault, catalog: Catalog, collection: str, *, written_before: float) -> list[OrphanObject]:
    """The collection's version files and the vault's blobs that no catalog version references.

    Only objects written before *written_before* are considered. Blobs are shared by every collection, so
    the blobs found are the vault's, whichever collection is being checked.
    """
    return [
        *_orphan_version_files(vault, catalog, collection, written_before),
        *_orphan_blobs(vault, catalog, written_before),
    ]


def _orphan_version_files(
    vault: Vault, catalog: Catalog, collection: str, written_before: float
) -> Iterator[OrphanObject]:
    versions = catalog.version_files(collection)
    chunk_files = set(versions.values())
    shape = re.compile(rf"collections/{re.escape(collection)}/docs/([^/]+)/v(\d+)(\.g\d+)?\.(parquet|json)")
    for key, written in vault.store.list_dated(f"collections/{collection}/docs/"):
        found = shape.fullmatch(key)
        if found is None or written >= written_before:
            continue  # not a version file (left alone), or too young to judge
        doc_id, version = found.group(1), int(found.group(2))
        if found.group(4) == "parquet" and key not in chunk_files:
            yield OrphanObject(key, "chunks", written, doc_id, version)
        elif found.group(4) == "json" and RowSet(doc_id=doc_id, version=version) not in versions:
            yield OrphanObject(key, "version_record", written, doc_id, version)


def _orphan_blobs(vault: Vault, catalog: Catalog, written_before: float) -> Iterator[OrphanObject]:
    blobs = {
        _digest(key): (key, written) for key, written in vault.store.list_dated("blobs/") if written < written_before
    }
    digests: Sequence[str] = sorted(blobs)
    for start in range(0, len(digests), _PAGE):
        page = digests[start : start + _PAGE]
        referenced = catalog.blob_references(page)
        for digest in page:
            if not referenced.get(digest):
                key, written = blobs[digest]
                yield OrphanObject(key, "blob", written)


def delete_orphan(vault: Vault, catalog: Catalog, orphan: OrphanObject) -> str | None:
    """Delete *orphan* unless it changed since it was found; return why it was kept, or None once deleted.

    Just before deleting, the object's write time and (for a blob) its references are read again: a
    writer that reused the blob meanwhile has written it again (`Vault.put_blob`) or recorded it.
    """
    now = [written for key, written in vault.store.list_dated(orphan.key) if key == orphan.key]
    if not now:
        return None  # already gone
    if now[0] != orphan.written or (orphan.kind == "blob" and catalog.blob_references([_digest(orphan.key)])):
        return "a writer used it again since it was found"
    try:
        vault.store.delete(orphan.key)
    except StorageError as exc:  # an object lock: retention wins over repair
        return str(exc)
    return None


def _digest(blob_key: str) -> str:
    return blob_key.rsplit("/", 1)[-1]
