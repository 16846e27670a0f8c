"""Importing what cairn kept before the catalog: one JSON manifest per collection in the vault.

Run when a process opens the catalog: each collection that has a manifest in the vault and no row
in the catalog is imported in one transaction (documents, versions, live pointers, ACLs), and the
manifest's pending and retired row sets become retired ones, so their rows are deleted as usual.
The manifest itself is left in place, untouched: if the import fails, the old data is as it was,
and the next start tries again. Each imported version also gets its vault record, so that the
catalog can later be rebuilt from the bucket alone.
"""

from __future__ import annotations

import logging

from cairn.catalog.protocol import Catalog
from cairn.catalog.records import CollectionState
from cairn.vault.store import Vault

__all__ = ["import_manifests"]

log = logging.getLogger("cairn.catalog")


def import_manifests(vault: Vault, catalog: Catalog) -> list[str]:
    """Import every pre-catalog manifest the catalog lacks; return the collections imported."""
    imported: list[str] = []
    known = set(catalog.collection_names())
    for name in vault.list_collections():
        if name in known:
            continue
        manifest = vault.load_manifest(name)
        if manifest is None:
            continue
        state = CollectionState(
            name=manifest.collection,
            embed_model=manifest.embed_model,
            dim=manifest.dim,
            generation=manifest.generation,
            retention=manifest.retention,
            created_at=manifest.created_at,
        )
        vault.write_collection_record(state)
        for doc in manifest.documents.values():
            for version in doc.versions:
                vault.write_version_record(state, doc, version)
        catalog.load_collection(state, list(manifest.documents.values()), hidden=manifest.hidden_rows())
        log.info("imported collection %s (%d documents) from its manifest", name, len(manifest.documents))
        imported.append(name)
    return imported
