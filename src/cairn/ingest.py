"""The ingest pipeline: discover → parse → chunk → embed (cached) → vault → index → publish.

Idempotent by content hash: an unchanged file costs one read and one hash. A changed file gets a
new immutable version; its rows are written hidden, made live by publishing the manifest, and the
old version's rows are deleted once no reader can still be looking at them. A file that fails is
reported and never stops the others.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cairn.chunking import chunk_elements
from cairn.embed.base import Embedder, embed_with_cache
from cairn.errors import CairnError
from cairn.index.milvus import IndexedDocument, MilvusIndex
from cairn.models import Chunk, FailedFile, IngestReport
from cairn.parse import detect_mime, parse_document
from cairn.settings import Settings
from cairn.snapshots import LiveManifest
from cairn.vault.manifest import DocumentRecord, Manifest, RowSet, VersionRecord
from cairn.vault.store import EmbeddingCache, Vault, sha256_hex

__all__ = ["IngestProgress", "Ingestor", "discover", "document_id"]


@dataclass(frozen=True)
class IngestProgress:
    """One step of an ingest, for progress bars: *done* of *total* files, now at *path*."""

    total: int
    done: int
    path: str
    outcome: str


def document_id(source: str) -> str:
    """A document's id: stable for the same absolute source path."""
    return sha256_hex(source)[:32]


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[FailedFile]]:
    """Every regular file under *paths* (hidden files and folders skipped), sorted, deduplicated."""
    found: dict[str, Path] = {}
    missing: list[FailedFile] = []
    for raw in paths:
        path = raw.expanduser().absolute()
        if path.is_file():
            found[str(path)] = path
        elif path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in files:
                    if not name.startswith("."):
                        candidate = Path(root) / name
                        if candidate.is_file():
                            found[str(candidate)] = candidate
        else:
            missing.append(FailedFile(path=str(path), error="no such file or directory"))
    return [found[k] for k in sorted(found)], missing


@dataclass
class _Prepared:
    record: DocumentRecord
    version: VersionRecord
    chunks: list[Chunk]


@dataclass
class _Batch:
    documents: list[_Prepared] = field(default_factory=list)
    chunk_count: int = 0


class Ingestor:
    """Runs ingests into one collection. One writer per collection at a time (``write_lock``)."""

    def __init__(
        self,
        *,
        settings: Settings,
        vault: Vault,
        index: MilvusIndex,
        embedder: Embedder,
        cache: EmbeddingCache,
        live: LiveManifest,
    ) -> None:
        self.settings = settings
        self.vault = vault
        self.index = index
        self.embedder = embedder
        self.cache = cache
        self.live = live

    def run(
        self,
        paths: Sequence[Path],
        *,
        sync: bool = False,
        progress: Callable[[IngestProgress], None] | None = None,
    ) -> IngestReport:
        with self.live.write_lock:
            manifest = self.live.draft()
            report = IngestReport(collection=manifest.collection)
            self.index.ensure_collection(manifest.collection, manifest.dim)
            self._clear_hidden(manifest)
            files, missing = discover(paths)
            report.files = len(files)
            report.failed.extend(missing)
            batch = _Batch()
            for done, path in enumerate(files, start=1):
                outcome = self._prepare(path, manifest, batch, report)
                if batch.chunk_count >= self.settings.ingest_batch_chunks:
                    self._commit(batch, manifest, report)
                    batch = _Batch()
                if progress:
                    progress(IngestProgress(total=len(files), done=done, path=str(path), outcome=outcome))
            self._commit(batch, manifest, report)
            if sync:
                report.removed = self._sync(paths, {str(p) for p in files}, manifest)
            return report

    # -- per file ----------------------------------------------------------------------------
    def _prepare(self, path: Path, manifest: Manifest, batch: _Batch, report: IngestReport) -> str:
        source = str(path)
        doc_id = document_id(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            report.failed.append(FailedFile(path=source, error=f"cannot read the file: {exc.strerror}"))
            return "failed"
        digest = sha256_hex(data)
        record = manifest.documents.get(doc_id)
        live = record.live_version() if record else None
        if live is not None and live.sha256 == digest:
            report.unchanged += 1
            return "unchanged"
        try:
            mime = detect_mime(source, data)
            elements = parse_document(data, path=source, mime=mime)
            record = (record or DocumentRecord(doc_id=doc_id, source=source)).model_copy(deep=True)
            number = record.next_version()
            chunks = chunk_elements(
                elements,
                doc_id=doc_id,
                version=number,
                tokenizer=self.embedder,
                max_tokens=self.settings.chunk_max_tokens,
                overlap_tokens=self.settings.chunk_overlap_tokens,
            )
            if not chunks:
                raise CairnError("no text found to index")
        except CairnError as exc:
            report.failed.append(FailedFile(path=source, error=str(exc)))
            return "failed"
        except Exception as exc:  # a parser bug must cost one file, not the run
            report.failed.append(FailedFile(path=source, error=f"unexpected {type(exc).__name__}: {exc}"))
            return "failed"
        self.vault.put_blob(data)
        version = VersionRecord(
            version=number,
            sha256=digest,
            size=len(data),
            mime=mime,
            created_at=time.time(),
            chunks=len(chunks),
            chunks_key=self.vault.chunks_key(manifest.collection, doc_id, number),
        )
        batch.documents.append(_Prepared(record=record, version=version, chunks=chunks))
        batch.chunk_count += len(chunks)
        return "ingested"

    # -- per batch ---------------------------------------------------------------------------
    def _commit(self, batch: _Batch, manifest: Manifest, report: IngestReport) -> None:
        """Embed, store and index a batch, then make its versions live atomically."""
        if not batch.documents:
            return
        texts = [chunk.text for doc in batch.documents for chunk in doc.chunks]
        vectors, _ = embed_with_cache(self.embedder, self.cache, texts)
        self.cache.flush()
        new_rows = [RowSet(doc_id=d.record.doc_id, version=d.version.version) for d in batch.documents]
        # 1. Announce the new rows as hidden, so a crash from here on leaves nothing visible twice.
        manifest.pending.extend(new_rows)
        self._save(manifest)
        offset = 0
        for doc in batch.documents:
            doc_vectors = vectors[offset : offset + len(doc.chunks)]
            offset += len(doc.chunks)
            self.vault.write_chunks(
                doc.version.chunks_key,
                doc.chunks,
                doc_vectors,
                metadata={
                    "doc_id": doc.record.doc_id,
                    "source": doc.record.source,
                    "version": str(doc.version.version),
                    "embed_model": manifest.embed_model,
                },
            )
            self.index.insert(
                manifest.collection,
                IndexedDocument(
                    doc_id=doc.record.doc_id,
                    source=doc.record.source,
                    version=doc.version.version,
                    tenant=doc.record.tenant,
                    allowed=doc.record.allowed,
                    mime=doc.version.mime,
                ),
                doc.chunks,
                doc_vectors,
            )
        # 2. Switch every document of the batch to its new version in one publish.
        retired: list[RowSet] = []
        for doc in batch.documents:
            if doc.record.live is not None:
                retired.append(RowSet(doc_id=doc.record.doc_id, version=doc.record.live))
            doc.record.versions.append(doc.version)
            doc.record.live = doc.version.version
            manifest.documents[doc.record.doc_id] = doc.record
        manifest.pending = [r for r in manifest.pending if r not in new_rows]
        manifest.retired.extend(retired)
        epoch = self._save(manifest)
        report.ingested += len(batch.documents)
        report.chunks += len(texts)
        # 3. Delete the replaced rows once no reader can still be using the old manifest.
        self._retire(manifest, epoch)

    def remove(self, doc_ids: Sequence[str]) -> list[DocumentRecord]:
        """Take live documents out of the collection (their vault versions stay); return them."""
        with self.live.write_lock:
            manifest = self.live.draft()
            docs = [manifest.documents[d] for d in doc_ids if d in manifest.documents]
            return self._take_down(manifest, [doc for doc in docs if doc.live is not None])

    def _take_down(self, manifest: Manifest, docs: list[DocumentRecord]) -> list[DocumentRecord]:
        """Make *docs* not live in one publish, then delete their rows."""
        for doc in docs:
            assert doc.live is not None
            manifest.retired.append(RowSet(doc_id=doc.doc_id, version=doc.live))
            doc.live = None
        if docs:
            self._retire(manifest, self._save(manifest))
        return docs

    def _retire(self, manifest: Manifest, epoch: int) -> None:
        if not manifest.retired:
            return
        self.live.wait_for_readers(epoch)
        self.index.delete_rows(manifest.collection, manifest.retired)
        manifest.retired = []
        self._save(manifest)

    def _clear_hidden(self, manifest: Manifest) -> None:
        """Delete rows a crashed run left hidden (pending or retired), then forget them."""
        if manifest.hidden_rows():
            self.index.delete_rows(manifest.collection, manifest.hidden_rows())
            manifest.pending, manifest.retired = [], []
            self._save(manifest)

    def _sync(self, roots: Sequence[Path], seen: set[str], manifest: Manifest) -> int:
        """Retire live documents under *roots* whose files no longer exist."""
        prefixes = [str(r.expanduser().absolute()) for r in roots]
        gone = [
            doc
            for doc in manifest.live_documents()
            if doc.source not in seen
            and any(doc.source == p or doc.source.startswith(p.rstrip(os.sep) + os.sep) for p in prefixes)
            and not Path(doc.source).exists()
        ]
        return len(self._take_down(manifest, gone))

    def _save(self, manifest: Manifest) -> int:
        self.vault.save_manifest(manifest)
        return self.live.publish(manifest)
