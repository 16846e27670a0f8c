"""Keeping the index true to the vault: rebuild it from the vault, and verify (and repair) the two.

The vault is the system of record; the Milvus collection is derived from it. ``rebuild`` drops
the collection and re-creates every live row from the vault's Parquet chunk files, vectors
included, so nothing is embedded again. ``verify`` compares the two without changing either, and
with ``repair`` restores the index from the vault:

- missing rows (in a live version's chunk file, not in the index) are inserted;
- orphan rows (in the index, but of no live version, or of no chunk in its file) are deleted;
- corrupt or missing vault objects (original bytes, chunk files) are reported; they cannot be
  repaired from the index and need the source file ingested again;
- orphan vault objects (original bytes, chunk files, version records no catalog version references,
  left by a writer killed before publishing) are reported and deleted, unless retention keeps them.

``reindex`` re-embeds every live chunk with another model into a new engine collection and
switches readers to it atomically (the catalog names index and model together).

All three hold the collection's maintenance lease in the catalog, so no ingest batch in any
process is reserved or published meanwhile (writers wait for the lease); searches go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from cairn.catalog import Catalog, CollectionState, DocumentRecord, RowSet
from cairn.catalog.writers import this_process
from cairn.chunking import embedding_input
from cairn.embed.base import Embedder, embed_with_cache
from cairn.errors import CairnError
from cairn.index.milvus import IndexedDocument, MilvusIndex, RowBatch
from cairn.ingest import Ingestor
from cairn.vault.orphans import delete_orphan, orphan_objects
from cairn.vault.store import EmbeddingCache, Vault

__all__ = ["Maintenance", "ReindexReport", "VerifyIssue", "VerifyReport", "rebuild", "reindex", "verify"]

_LEASE_S = 3600.0


@dataclass
class Maintenance:
    """What a maintenance run works on: one collection, its vault, index and catalog."""

    vault: Vault
    index: MilvusIndex
    catalog: Catalog
    ingestor: Ingestor
    collection: str

    @contextmanager
    def exclusive(self) -> Iterator[CollectionState]:
        """Hold the collection's maintenance lease (waiting for another holder), with writers drained.

        Yields the collection's state once no version is pending any more: batches reserved before
        the lease was taken are published (or abandoned) first.
        """
        holder = this_process()
        deadline = time.monotonic() + _LEASE_S
        while not self.catalog.hold_maintenance(self.collection, holder, ttl_s=_LEASE_S):
            if time.monotonic() > deadline:
                raise CairnError(f"collection {self.collection!r} stayed under another maintenance run for an hour")
            time.sleep(0.5)
        try:
            while self.catalog.pending_versions(self.collection):
                self.ingestor.sweep(self.ingestor.state())
                if time.monotonic() > deadline:
                    raise CairnError(f"writers of collection {self.collection!r} did not finish within an hour")
                time.sleep(0.2)
            yield self.ingestor.state()
        finally:
            self.catalog.release_maintenance(self.collection, holder)


IssueKind = Literal["missing_rows", "orphan_rows", "corrupt_blob", "corrupt_chunks", "orphan_object"]

# Vault objects no catalog version references count as orphans only when written this long before the check
# began: a running writer's objects are younger (cairn.vault.orphans).
ORPHAN_GRACE_S = 3600.0


class VerifyIssue(BaseModel):
    kind: IssueKind
    detail: str
    doc_id: str | None = None
    source: str | None = None
    version: int | None = None
    rows: int = 0
    key: str | None = None  # the vault object (orphan_object)
    repaired: bool = False
    kept: bool = False  # an orphan that retention (or a writer that reused it) keeps: nothing to repair


class VerifyReport(BaseModel):
    collection: str
    documents: int = 0
    chunks: int = 0
    rows: int = 0
    issues: list[VerifyIssue] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def clean(self) -> bool:
        """True when nothing is wrong, or everything found was repaired or is kept on purpose (retention)."""
        return all(issue.repaired or issue.kept for issue in self.issues)


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
    work: Maintenance,
    *,
    embedder: Embedder,
    cache: EmbeddingCache,
    progress: Callable[[int, int], None] | None = None,
) -> ReindexReport:
    """Re-embed every live chunk with ``embedder`` into a new engine collection, then switch readers.

    Readers keep searching the old collection with the old model until the catalog, which names
    the new collection and model together, switches generation; the old collection is dropped
    after the retire grace, once no reader can still be using it.
    """
    started = time.perf_counter()
    vault, index = work.vault, work.index
    with work.exclusive() as old:
        new = old.model_copy(
            update={"generation": old.generation + 1, "embed_model": embedder.model_name, "dim": embedder.dim}
        )
        report = ReindexReport(
            collection=old.name,
            embed_model=new.embed_model,
            previous_model=old.embed_model,
            dim=new.dim,
            generation=new.generation,
        )
        index.drop_collection(new.index_name)  # leftovers of an interrupted reindex
        index.ensure_collection(new.index_name, new.dim)
        total, _ = work.catalog.live_counts(old.name)
        rows = RowBatch(index, new.index_name)
        chunk_keys: dict[RowSet, str] = {}
        context = work.ingestor.settings.embed_heading_context
        for done, doc in enumerate(work.catalog.iter_live_documents(old.name), start=1):
            version = doc.live_version()
            assert version is not None
            chunks, _ = vault.read_chunks(version.chunks_key, doc_id=doc.doc_id, version=version.version)
            texts = [embedding_input(chunk, heading_context=context) for chunk in chunks]
            vectors, embedded = embed_with_cache(embedder, cache, texts)
            version = version.model_copy(
                update={"chunks_key": vault.chunks_key(new.name, doc.doc_id, version.version, new.generation)}
            )
            chunk_keys[RowSet(doc_id=doc.doc_id, version=version.version)] = version.chunks_key
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
                progress(done, total)
        rows.flush()
        cache.flush()
        # The switch: one catalog transaction moves every reader to the new index and model; on a
        # server, the collection's alias moves with them for anything else that reads through it.
        work.catalog.switch_generation(
            new.name, generation=new.generation, embed_model=new.embed_model, dim=new.dim, chunk_keys=chunk_keys
        )
        vault.write_collection_record(new)
        switched = time.time()
        index.point_alias(new.name, new.index_name)
        work.ingestor.readers.wait_for_readers_before(switched)
        time.sleep(min(work.ingestor.settings.retire_grace, 5.0))
        index.drop_collection(old.index_name)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def rebuild(work: Maintenance) -> int:
    """Re-create the collection's index from the vault; return the number of rows inserted."""
    vault, index = work.vault, work.index
    with work.exclusive() as state:
        index.drop_collection(state.index_name)
        index.ensure_collection(state.index_name, state.dim)
        rows = 0
        batch = RowBatch(index, state.index_name)
        for doc in work.catalog.iter_live_documents(state.name):
            version = doc.live_version()
            assert version is not None
            chunks, vectors = vault.read_chunks(version.chunks_key, doc_id=doc.doc_id, version=version.version)
            batch.add(IndexedDocument.of(doc, version), chunks, vectors)
            rows += len(chunks)
        batch.flush()
        retired = [rowset for rowset, _ in work.catalog.retired_rows(state.name, before=time.time())]
        work.catalog.forget_retired(state.name, retired)  # the index holds none of them any more
        return rows


def verify(work: Maintenance, *, repair: bool = False, orphan_grace_s: float = ORPHAN_GRACE_S) -> VerifyReport:
    """Compare the vault with the index; with ``repair``, make the index match the vault.

    Rows the catalog still hides (a batch being written, replaced rows within their grace) are
    neither missing nor orphans; retired rows past their grace are deleted first. Vault objects no
    catalog version references, written more than *orphan_grace_s* before the check began, are
    orphan objects; ``repair`` deletes them unless retention keeps them (`cairn.vault.orphans`).
    """
    vault, index = work.vault, work.index
    began = time.time()
    with work.exclusive() as state:
        work.ingestor.sweep(state)
        hidden = set(work.catalog.hidden_rows(state.name))
        report = VerifyReport(collection=state.name)
        indexed = index.indexed_chunks(state.index_name)
        report.rows = len(indexed)
        expected: set[str] = {chunk for chunk, rowset in indexed.items() if rowset in hidden}
        for doc in work.catalog.iter_live_documents(state.name):
            report.documents += 1
            expected |= _check_document(vault, index, state, doc, indexed, report, repair=repair)
        orphans = sorted(chunk for chunk in indexed if chunk not in expected)
        if orphans:
            by_version: dict[RowSet, int] = {}
            for chunk in orphans:
                by_version[indexed[chunk]] = by_version.get(indexed[chunk], 0) + 1
            if repair:
                index.delete_chunks(state.index_name, orphans)
            owners = work.catalog.documents(state.name, [rowset.doc_id for rowset in by_version])
            for rowset, count in sorted(by_version.items(), key=lambda item: (item[0].doc_id, item[0].version)):
                owner = owners.get(rowset.doc_id)
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
        _check_orphan_objects(work, state, report, repair=repair, written_before=began - orphan_grace_s)
        return report


def _check_orphan_objects(
    work: Maintenance, state: CollectionState, report: VerifyReport, *, repair: bool, written_before: float
) -> None:
    """Report (and with *repair* delete) vault objects that no catalog version references."""
    for orphan in orphan_objects(work.vault, work.catalog, state.name, written_before=written_before):
        what = {"blob": "original bytes", "chunks": "a chunk file", "version_record": "a version record"}[orphan.kind]
        detail = f"{orphan.key} ({what}) belongs to no version in the catalog (a writer stopped before publishing)"
        kept_by: str | None = None
        if orphan.kind != "blob" and state.retention is not None:
            kept_by = f"collection {state.name!r} is under {state.retention.mode} retention"
        elif repair:
            kept_by = delete_orphan(work.vault, work.catalog, orphan)
        report.issues.append(
            VerifyIssue(
                kind="orphan_object",
                detail=f"{detail}; kept: {kept_by}" if kept_by else detail,
                doc_id=orphan.doc_id,
                version=orphan.version,
                key=orphan.key,
                repaired=repair and kept_by is None,
                kept=kept_by is not None,
            )
        )


def _check_document(
    vault: Vault,
    index: MilvusIndex,
    state: CollectionState,
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
            index.insert(state.index_name, IndexedDocument.of(doc, version), rows, vectors[missing])
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
