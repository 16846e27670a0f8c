"""Recreating the catalog from the vault alone: the bucket is the system of record.

Every stored version has an immutable record beside its chunk file (source, bytes, tenant, ACL),
and every later change to a document (ACL change, take-down, purge) an immutable event. Replaying
them in time order gives each document its versions, its live pointer and its access again:

- a version makes itself live unless a newer one already is (as publishing does);
- ``access`` sets the tenant and ACL; ``take_down`` makes the document not live; ``purge`` forgets it.

Used by ``cairn rebuild --catalog`` when the database is lost; the index is rebuilt afterwards.
"""

from __future__ import annotations

from typing import Any

from cairn.catalog.protocol import Catalog
from cairn.catalog.records import DocumentRecord, VersionRecord
from cairn.vault.store import Vault

__all__ = ["restore_from_vault"]


def restore_from_vault(vault: Vault, catalog: Catalog) -> list[str]:
    """Recreate every collection the vault has records of and the catalog lacks; return their names."""
    restored: list[str] = []
    known = set(catalog.collection_names())
    for state in vault.collection_records():
        if state.name in known:
            continue
        documents = _replay(vault.version_records(state.name), vault.events(state.name))
        if catalog.load_collection(state, documents):
            restored.append(state.name)
    return restored


def _replay(records: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[DocumentRecord]:
    timeline: list[tuple[float, int, dict[str, Any]]] = [
        (float(r["created_at"]), 0, {"kind": "version", **r}) for r in records
    ] + [(float(e["at"]), 1, e) for e in events]
    documents: dict[str, DocumentRecord] = {}
    for _, _, item in sorted(timeline, key=lambda entry: (entry[0], entry[1])):
        doc_id = str(item["doc_id"])
        kind = item["kind"]
        if kind == "version":
            version = VersionRecord.model_validate(item)
            doc = documents.setdefault(
                doc_id,
                DocumentRecord(
                    doc_id=doc_id, source=str(item["source"]), tenant=str(item["tenant"]), allowed=list(item["allowed"])
                ),
            )
            doc.versions.append(version)
            if doc.live is None or version.version > doc.live:
                doc.live = version.version
                doc.tenant, doc.allowed, doc.source = str(item["tenant"]), list(item["allowed"]), str(item["source"])
        elif doc_id not in documents:
            continue
        elif kind == "access":
            documents[doc_id].tenant = str(item["tenant"])
            documents[doc_id].allowed = list(item["allowed"])
        elif kind == "source":  # renamed to its identity (see `Ingestor`)
            documents[doc_id].source = str(item["source"])
        elif kind == "take_down":
            documents[doc_id].live = None
        elif kind == "purge":
            del documents[doc_id]
    for doc in documents.values():
        doc.versions.sort(key=lambda v: v.version)
    return list(documents.values())
