"""The ingest pipeline: discover → parse → chunk → embed (cached) → vault → index → publish.

Idempotent by content hash: an unchanged file costs one read and one hash. A changed file gets a
new immutable version; its rows are written hidden, made live by publishing the manifest, and the
old version's rows are deleted once no reader can still be looking at them. A file that fails is
reported and never stops the others.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cairn.chunking import chunk_elements
from cairn.embed.base import Embedder, embed_with_cache
from cairn.errors import CairnError
from cairn.index.milvus import IndexedDocument, MilvusIndex
from cairn.models import Chunk, FailedFile, IngestReport
from cairn.parse.pool import ParseOutcome, ParsePool
from cairn.settings import Settings
from cairn.snapshots import LiveManifest
from cairn.vault.manifest import DocumentRecord, Manifest, RowSet, VersionRecord
from cairn.vault.store import EmbeddingCache, Vault, Vector, sha256_hex

__all__ = ["DocumentAccess", "IngestProgress", "Ingestor", "discover", "document_id"]


@dataclass(frozen=True)
class IngestProgress:
    """One file's outcome, for progress bars: *done* of *total* files, now at *path*.

    ``ingested`` is reported only once the file's bytes, chunks and vectors are in the vault, its
    rows are in the index and its version is live: it is an acknowledgement.
    """

    total: int
    done: int
    path: str
    outcome: str


@dataclass(frozen=True)
class DocumentAccess:
    """Who may see a document: its tenant and the identities in its ACL (``*`` is everyone in the tenant)."""

    tenant: str = "default"
    allowed: tuple[str, ...] | None = ("*",)  # None: keep a known document's ACL (new ones: everyone)


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
    format: str


@dataclass
class _Batch:
    documents: list[_Prepared] = field(default_factory=list)
    chunk_count: int = 0


class _StageClock:
    """Seconds spent per pipeline stage, for the report."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def rounded(self) -> dict[str, float]:
        return {name: round(value, 4) for name, value in self.seconds.items()}


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class Ingestor:
    """Runs ingests into one collection. One writer per collection at a time (``write_lock``).

    Files are hashed here; changed ones are parsed in the `ParsePool`'s processes, several
    files ahead, while this process chunks, embeds and commits what is already parsed.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        vault: Vault,
        index: MilvusIndex,
        embedder_for: Callable[[str], Embedder],
        cache_for: Callable[[str], EmbeddingCache],
        live: LiveManifest,
        parsers: ParsePool,
    ) -> None:
        self.settings = settings
        self.vault = vault
        self.index = index
        # Resolved per run from the collection's manifest: its model, not necessarily the default one.
        self.embedder_for = embedder_for
        self.cache_for = cache_for
        self.live = live
        self.parsers = parsers

    def run(
        self,
        paths: Sequence[Path],
        *,
        sync: bool = False,
        progress: Callable[[IngestProgress], None] | None = None,
        access: DocumentAccess | None = None,
    ) -> IngestReport:
        """Ingest *paths*; with *access*, every document named gets that tenant and ACL.

        Without *access*, new documents are visible to everyone in the ``default`` tenant and known
        documents keep theirs (a plain re-ingest never widens an ACL). With it, an unchanged
        document whose ACL differs gets the new one without being parsed or embedded again.
        """
        self.access = access
        started = time.perf_counter()
        clock = _StageClock()
        with self.live.write_lock:
            manifest = self.live.draft()
            self.embedder = self.embedder_for(manifest.embed_model)
            self.cache = self.cache_for(manifest.embed_model)
            report = IngestReport(collection=manifest.collection)
            self.index.ensure_collection(manifest.index_name, manifest.dim)
            self._clear_hidden(manifest)
            with clock.stage("discover"):
                files, missing = discover(paths)
            report.files = len(files)
            report.failed.extend(missing)
            done = 0
            regranted: list[str] = []

            def step(path: str, outcome: str) -> None:
                nonlocal done
                done += 1
                if progress:
                    progress(IngestProgress(total=len(files), done=done, path=path, outcome=outcome))

            def changed_files() -> Iterator[str]:
                for path in files:
                    with clock.stage("hash"):
                        state = self._state(path, manifest)
                    if state == "changed":
                        yield str(path)
                    else:
                        if state == "unchanged":
                            report.unchanged += 1
                            regranted.append(document_id(str(path)))
                        else:
                            report.failed.append(FailedFile(path=str(path), error=state))
                        step(str(path), "unchanged" if state == "unchanged" else "failed")

            batch = _Batch()
            outcomes = self.parsers.parse(changed_files())
            while True:
                with clock.stage("parse_wait"):
                    parsed = next(outcomes, None)
                if parsed is None:
                    break
                clock.add("parse", parsed.seconds)
                outcome = self._prepare(parsed, manifest, batch, report, clock)
                if outcome != "ingested":
                    step(parsed.path, outcome)
                if batch.chunk_count >= self.settings.ingest_batch_chunks:
                    self._commit(batch, manifest, report, clock)
                    for doc in batch.documents:  # acknowledged only now: stored, indexed and live
                        step(doc.record.source, "ingested")
                    batch = _Batch()
            self._commit(batch, manifest, report, clock)
            for doc in batch.documents:
                step(doc.record.source, "ingested")
            if sync:
                with clock.stage("publish"):
                    report.removed = self._sync(paths, {str(p) for p in files}, manifest)
            if access is not None:
                with clock.stage("publish"):
                    self._grant(manifest, regranted, access)
        clock.add("total", time.perf_counter() - started)
        report.seconds = clock.rounded()
        return report

    # -- per file ----------------------------------------------------------------------------
    def _state(self, path: Path, manifest: Manifest) -> str:
        """``unchanged``, ``changed``, or why the file cannot be read."""
        try:
            digest = _file_sha256(path)
        except OSError as exc:
            return f"cannot read the file: {exc.strerror}"
        record = manifest.documents.get(document_id(str(path)))
        live = record.live_version() if record else None
        return "unchanged" if live is not None and live.sha256 == digest else "changed"

    def _prepare(
        self, parsed: ParseOutcome, manifest: Manifest, batch: _Batch, report: IngestReport, clock: _StageClock
    ) -> str:
        source = parsed.path
        if parsed.problem is not None:
            (report.skipped if parsed.skipped else report.failed).append(parsed.problem)
            return "skipped" if parsed.skipped else "failed"
        document = parsed.parsed
        assert document is not None
        report.skipped.extend(document.skipped)
        report.failed.extend(document.failed)
        doc_id = document_id(source)
        record = manifest.documents.get(doc_id)
        if record is None:
            default = self.access or DocumentAccess()
            record = DocumentRecord(
                doc_id=doc_id, source=source, tenant=default.tenant, allowed=list(default.allowed or ("*",))
            )
        record = record.model_copy(deep=True)
        if self.access is not None:
            record.tenant = self.access.tenant
            if self.access.allowed is not None:
                record.allowed = list(self.access.allowed)
        number = record.next_version()
        try:
            with clock.stage("chunk"):
                chunks = chunk_elements(
                    document.elements,
                    doc_id=doc_id,
                    version=number,
                    tokenizer=self.embedder,
                    max_tokens=self.settings.chunk_max_tokens,
                    overlap_tokens=self.settings.chunk_overlap_tokens,
                )
            if not chunks:
                raise CairnError("no text found to index")
            with clock.stage("store"):
                data = Path(source).read_bytes()
                if sha256_hex(data) != parsed.sha256:
                    raise CairnError("the file changed while it was being ingested; ingest it again")
                self.vault.put_blob(data)
        except CairnError as exc:
            report.failed.append(FailedFile(path=source, error=str(exc)))
            return "failed"
        except OSError as exc:
            report.failed.append(FailedFile(path=source, error=f"cannot read the file: {exc.strerror}"))
            return "failed"
        version = VersionRecord(
            version=number,
            sha256=parsed.sha256,
            size=parsed.size,
            mime=document.mime,
            created_at=time.time(),
            chunks=len(chunks),
            chunks_key=self.vault.chunks_key(manifest.collection, doc_id, number, manifest.generation),
        )
        batch.documents.append(_Prepared(record=record, version=version, chunks=chunks, format=document.format))
        batch.chunk_count += len(chunks)
        return "ingested"

    # -- per batch ---------------------------------------------------------------------------
    def _commit(self, batch: _Batch, manifest: Manifest, report: IngestReport, clock: _StageClock) -> None:
        """Embed, store and index a batch, then make its versions live atomically."""
        if not batch.documents:
            return
        texts = [chunk.text for doc in batch.documents for chunk in doc.chunks]
        with clock.stage("embed"):
            vectors, _ = embed_with_cache(self.embedder, self.cache, texts)
        new_rows = [RowSet(doc_id=d.record.doc_id, version=d.version.version) for d in batch.documents]
        with clock.stage("store"):
            self.cache.flush()
            # 1. Announce the new rows as hidden, so a crash from here on leaves nothing visible twice.
            manifest.pending.extend(new_rows)
            self._save(manifest)
        offset = 0
        for doc in batch.documents:
            doc_vectors = vectors[offset : offset + len(doc.chunks)]
            offset += len(doc.chunks)
            with clock.stage("store"):
                self._write_chunks(doc, doc_vectors, manifest)
                if manifest.retention is not None:
                    self.vault.retain_version(doc.version, manifest.retention)
            with clock.stage("index"):
                self._index_rows(doc, doc_vectors, manifest)
        with clock.stage("publish"):
            self._publish(batch, new_rows, manifest, report)

    def _write_chunks(self, doc: _Prepared, doc_vectors: Vector, manifest: Manifest) -> None:
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

    def _index_rows(self, doc: _Prepared, doc_vectors: Vector, manifest: Manifest) -> None:
        self.index.insert(manifest.index_name, IndexedDocument.of(doc.record, doc.version), doc.chunks, doc_vectors)

    def _publish(self, batch: _Batch, new_rows: list[RowSet], manifest: Manifest, report: IngestReport) -> None:
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
        for doc in batch.documents:
            report.chunks += len(doc.chunks)
            report.tokens += sum(chunk.token_count for chunk in doc.chunks)
            report.formats[doc.format] = report.formats.get(doc.format, 0) + 1
        # 3. Delete the replaced rows once no reader can still be using the old manifest.
        self._retire(manifest, epoch)

    def change_access(self, doc_ids: Sequence[str], access: DocumentAccess) -> None:
        """Give documents a new tenant and ACL: the manifest first (authoritative for readers), then the rows."""
        with self.live.write_lock:
            self._grant(self.live.draft(), list(doc_ids), access)

    def _grant(self, manifest: Manifest, doc_ids: list[str], access: DocumentAccess) -> None:
        changed = [
            manifest.documents[d]
            for d in doc_ids
            if d in manifest.documents
            and (manifest.documents[d].tenant, manifest.documents[d].allowed)
            != (access.tenant, list(access.allowed) if access.allowed is not None else manifest.documents[d].allowed)
        ]
        if not changed:
            return
        for doc in changed:
            doc.tenant = access.tenant
            if access.allowed is not None:
                doc.allowed = list(access.allowed)
        self._save(manifest)
        for doc in changed:
            version = doc.live_version()
            if version is None:
                continue
            chunks, vectors = self.vault.read_chunks(version.chunks_key, doc_id=doc.doc_id, version=version.version)
            self.index.insert(manifest.index_name, IndexedDocument.of(doc, version), chunks, vectors, replace=True)

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
        self.index.delete_rows(manifest.index_name, manifest.retired)
        manifest.retired = []
        self._save(manifest)

    def _clear_hidden(self, manifest: Manifest) -> None:
        """Delete rows a crashed run left hidden (pending or retired), then forget them."""
        if manifest.hidden_rows():
            self.index.delete_rows(manifest.index_name, manifest.hidden_rows())
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
