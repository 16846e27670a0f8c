"""Keeping the index true to the vault: rebuild it from the vault, and verify (and repair) the two.

The vault is the system of record; the Milvus collection is derived from it. ``rebuild`` drops
the collection and re-creates every live row from the vault's Parquet chunk files, vectors
included, so nothing is embedded again. ``verify`` compares the two without changing either, and
with ``repair`` restores the index from the vault:

- missing rows (in a live version's chunk file, not in the index) are inserted;
- orphan rows (in the index, but of no live version, or of no chunk in its file) are deleted;
- corrupt or missing vault objects (original bytes, chunk files) are reported; they cannot be
  repaired from the index and need the source file ingested again.

``reindex`` re-embeds every live chunk with another model into a new engine collection and
switches readers to it atomically (the manifest names index and model together).

All three hold the collection's write lock, so no ingest runs meanwhile; searches go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from cairn.embed.base import Embedder, embed_with_cache
from cairn.errors import CairnError
from cairn.index.milvus import IndexedDocument, MilvusIndex, RowBatch
from cairn.snapshots import LiveManifest
from cairn.vault.manifest import DocumentRecord, Manifest, RowSet
from cairn.vault.store import EmbeddingCache, Vault

__all__ = ["ReindexReport", "VerifyIssue", "VerifyReport", "rebuild", "reindex", "verify"]

IssueKind = Literal["missing_rows", "orphan_rows", "corrupt_blob", "corrupt_chunks"]


class VerifyIssue(BaseModel):
    kind: IssueKind
    detail: str
    doc_id: str | None = None
    source: str | None = None
    version: int | None = None
    rows: int = 0
    repaired: bool = False


class VerifyReport(BaseModel):
    collection: str
    documents: int = 0
    chunks: int = 0
    rows: int = 0
    issues: list[VerifyIssue] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def clean(self) -> bool:
        """True when nothing is wrong, or everything found was repaired."""
        return all(issue.repaired for issue in self.issues)


class ReindexReport(BaseModel):
    collection: str
    embed_model: str
    previous_model: str
    dim: int
    generation: int
    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    seconds: float = 0.0


def reindex(
    vault: Vault,
    index: MilvusIndex,
    live: LiveManifest,
    *,
    embedder: Embedder,
    cache: EmbeddingCache,
    progress: Callable[[int, int], None] | None = None,
) -> ReindexReport:
    """Re-embed every live chunk with ``embedder`` into a new engine collection, then switch readers.

    Readers keep searching the old collection with the old model until the new manifest, which
    names the new collection and model together, is published; the old collection is dropped once
    no reader can still be using it. Ingests wait for the write lock meanwhile.
    """
    started = time.perf_counter()
    with live.write_lock:
        old = live.draft()
        new = old.model_copy(deep=True)
        new.generation = old.generation + 1
        new.embed_model, new.dim = embedder.model_name, embedder.dim
        new.pending, new.retired = [], []
        report = ReindexReport(
            collection=old.collection,
            embed_model=new.embed_model,
            previous_model=old.embed_model,
            dim=new.dim,
            generation=new.generation,
        )
        index.drop_collection(new.index_name)  # leftovers of an interrupted reindex
        index.ensure_collection(new.index_name, new.dim)
        documents = new.live_documents()
        rows = RowBatch(index, new.index_name)
        for done, doc in enumerate(documents, start=1):
            version = doc.live_version()
            assert version is not None
            chunks, _ = vault.read_chunks(version.chunks_key, doc_id=doc.doc_id, version=version.version)
            vectors, embedded = embed_with_cache(embedder, cache, [chunk.text for chunk in chunks])
            version.chunks_key = vault.chunks_key(new.collection, doc.doc_id, version.version, new.generation)
            vault.write_chunks(
                version.chunks_key,
                chunks,
                vectors,
                metadata={
                    "doc_id": doc.doc_id,
                    "source": doc.source,
                    "version": str(version.version),
                    "embed_model": new.embed_model,
                },
            )
            if new.retention is not None:
                vault.retain_version(version, new.retention)
            rows.add(IndexedDocument.of(doc, version), chunks, vectors)
            report.documents += 1
            report.chunks += len(chunks)
            report.embedded += embedded
            if progress:
                progress(done, len(documents))
        rows.flush()
        cache.flush()
        # The switch: one manifest write and one publish move every reader to the new index and model;
        # on a server, the collection's alias moves with them for anything else that reads through it.
        vault.save_manifest(new)
        epoch = live.publish(new)
        index.point_alias(new.collection, new.index_name)
        live.wait_for_readers(epoch)
        index.drop_collection(old.index_name)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def rebuild(vault: Vault, index: MilvusIndex, live: LiveManifest) -> int:
    """Re-create the collection's index from the vault; return the number of rows inserted."""
    with live.write_lock:
        manifest = live.draft()
        index.drop_collection(manifest.index_name)
        index.ensure_collection(manifest.index_name, manifest.dim)
        rows = 0
        batch = RowBatch(index, manifest.index_name)
        for doc in manifest.live_documents():
            version = doc.live_version()
            assert version is not None
            chunks, vectors = vault.read_chunks(version.chunks_key, doc_id=doc.doc_id, version=version.version)
            batch.add(IndexedDocument.of(doc, version), chunks, vectors)
            rows += len(chunks)
        batch.flush()
        if manifest.hidden_rows():
            manifest.pending, manifest.retired = [], []
            vault.save_manifest(manifest)
            live.publish(manifest)
        return rows


def verify(vault: Vault, index: MilvusIndex, live: LiveManifest, *, repair: bool = False) -> VerifyReport:
    """Compare the vault with the index; with ``repair``, make the index match the vault."""
    with live.write_lock:
        manifest = live.draft()
        report = VerifyReport(collection=manifest.collection)
        indexed = index.indexed_chunks(manifest.index_name)
        report.rows = len(indexed)
        expected: set[str] = set()
        for doc in manifest.live_documents():
            report.documents += 1
            expected |= _check_document(vault, index, manifest, doc, indexed, report, repair=repair)
        orphans = sorted(chunk for chunk in indexed if chunk not in expected)
        if orphans:
            by_version: dict[RowSet, int] = {}
            for chunk in orphans:
                by_version[indexed[chunk]] = by_version.get(indexed[chunk], 0) + 1
            if repair:
                index.delete_chunks(manifest.index_name, orphans)
                if manifest.hidden_rows():
                    manifest.pending, manifest.retired = [], []
                    vault.save_manifest(manifest)
                    live.publish(manifest)
            for rowset, count in sorted(by_version.items(), key=lambda item: (item[0].doc_id, item[0].version)):
                owner = manifest.documents.get(rowset.doc_id)
                report.issues.append(
                    VerifyIssue(
                        kind="orphan_rows",
                        detail=f"{count} index rows belong to no live chunk of this document version",
                        doc_id=rowset.doc_id,
                        source=owner.source if owner else None,
                        version=rowset.version,
                        rows=count,
                        repaired=repair,
                    )
                )
        return report


def _check_document(
    vault: Vault,
    index: MilvusIndex,
    manifest: Manifest,
    doc: DocumentRecord,
    indexed: dict[str, RowSet],
    report: VerifyReport,
    *,
    repair: bool,
) -> set[str]:
    """Check one live document's bytes, chunk file and rows; return the chunk ids it should have."""
    version = doc.live_version()
    assert version is not None
    where = {"doc_id": doc.doc_id, "source": doc.source, "version": version.version}
    mine = RowSet(doc_id=doc.doc_id, version=version.version)
    try:
        vault.get_blob(version.sha256)
    except CairnError as exc:
        report.issues.append(VerifyIssue(kind="corrupt_blob", detail=str(exc), **where))
    try:
        chunks, vectors = vault.read_chunks(version.chunks_key, doc_id=doc.doc_id, version=version.version)
    except CairnError as exc:
        report.issues.append(VerifyIssue(kind="corrupt_chunks", detail=str(exc), **where))
        # Rows of this version are kept: they are all that is left of it until it is re-ingested.
        return {
            chunk for chunk, rowset in indexed.items() if rowset == RowSet(doc_id=doc.doc_id, version=version.version)
        }
    report.chunks += len(chunks)
    mine = RowSet(doc_id=doc.doc_id, version=version.version)
    missing = [i for i, chunk in enumerate(chunks) if indexed.get(chunk.chunk_id) != mine]
    if missing:
        if repair:
            rows = [chunks[i] for i in missing]
            index.insert(manifest.index_name, IndexedDocument.of(doc, version), rows, vectors[missing])
        report.issues.append(
            VerifyIssue(
                kind="missing_rows",
                detail=f"{len(missing)} of {len(chunks)} chunks are not in the index",
                rows=len(missing),
                repaired=repair,
                **where,
            )
        )
    return {chunk.chunk_id for chunk in chunks}
