"""The ingest pipeline: discover → parse → chunk → embed (cached) → reserve → vault → index → publish.

Idempotent by content hash: an unchanged file costs one read and one hash. A changed file gets a
new immutable version: the catalog reserves its number (its rows hidden while pending), its chunk
file and rows are written, and one catalog transaction per batch makes the batch live. The old
version's rows are retired, then deleted by the janitor once no reader can still be using them.
Any number of processes may ingest into one collection at once. A file that fails is reported and
never stops the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cairn.access import permits
from cairn.auth import Principal
from cairn.catalog import Catalog, CollectionState, DocumentRecord, RowSet, VersionDraft, VersionRecord
from cairn.catalog.janitor import Janitor, LocalReaders
from cairn.catalog.writers import this_process
from cairn.chunking import chunk_elements, chunk_id, embedding_input
from cairn.embed.base import Embedder, ExpectsDocuments, embed_with_cache
from cairn.errors import CairnError
from cairn.index.milvus import IndexedDocument, MilvusIndex
from cairn.models import Chunk, FailedFile, IngestReport
from cairn.parse.pool import ParseOutcome
from cairn.settings import Settings
from cairn.vault.store import EmbeddingCache, Vault, Vector, sha256_hex

log = logging.getLogger("cairn.ingest")

# A file's bytes per chunk, roughly (256 tokens of prose); only to predict whether an ingest is large.
_BYTES_PER_CHUNK = 1024
# Said alike whether the document exists for another group or tenant, or the name is just not this key's to use.
_NOT_YOURS = "a document of this name exists that this key may not change; choose another name"

__all__ = ["DocumentAccess", "IngestProgress", "Ingestor", "discover", "document_id", "local_identities"]


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
    """A deterministic id for a source, for synthetic catalogs (benchmarks); real documents get `new_document_id`."""
    return sha256_hex(source)[:32]


def new_document_id() -> str:
    """A new document's id: random, so that nobody can derive a document's id from its name."""
    return secrets.token_hex(16)


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


def local_identities(paths: Iterable[Path], files: Sequence[Path]) -> dict[str, str]:
    """Each file's identity: its path from the folder given, that folder's name first (``docs/guide/a.md``).

    ``cairn ingest /srv/docs`` names ``/srv/docs/guide/a.md`` ``docs/guide/a.md``; a file given by
    itself is named from its own folder (``cairn ingest /srv/docs/guide/a.md`` → ``guide/a.md``,
    as ``cairn ingest /srv/docs/guide`` names it). The identity never holds the importing machine's
    mount point, so the same folder ingested later from elsewhere (``/mnt/a/docs`` then
    ``/srv/docs``) names the same documents, and two folders of different names never collide.
    When a file lies under several given folders, the first one given names it.
    """
    identities: dict[str, str] = {}
    roots = [raw.expanduser().absolute() for raw in paths]
    for file in files:
        for root in roots:
            if file == root:
                identities[str(file)] = file.relative_to(file.parent.parent).as_posix()
                break
            if root in file.parents:
                identities[str(file)] = file.relative_to(root.parent).as_posix()
                break
    return identities


def is_local_identity(source: str) -> bool:
    """Whether a document's source names a file of a plain ingest (relative, or an older absolute path).

    Not an upload (``upload:NAME``), an object (``s3://…``) or a repository's file (``repo@path``: an
    ``@`` in the first segment; a folder so named is then left alone by ``--sync``, the safe side).
    """
    if source.startswith("upload:") or "://" in source:
        return False
    return "@" not in source.split("/", 1)[0]


@dataclass
class _Prepared:
    draft: VersionDraft
    chunks: list[Chunk]  # numbered version 0 until the catalog reserves the version
    format: str
    record: DocumentRecord | None = None
    version: VersionRecord | None = None


@dataclass
class _Batch:
    documents: list[_Prepared] = field(default_factory=list)
    chunk_count: int = 0


class _StageClock:
    """Seconds spent per pipeline stage, for the report.

    Embedding runs on a thread of its own beside the other stages, so the stages add up to more than the total;
    ``embed_wait`` is how long committing waited for vectors.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def rounded(self) -> dict[str, float]:
        return {name: round(value, 4) for name, value in self.seconds.items()}


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class Parsers(Protocol):
    """What parses an ingest's files: the local `ParsePool`, or the Ray engine's actors."""

    def parse(self, paths: Iterable[str], *, window: int | None = None) -> Iterator[ParseOutcome]:
        """One outcome per path, in the order they finish, never raising for one file."""


class Ingestor:
    """Runs ingests into one collection; other processes may write to it at the same time.

    Files are hashed here; changed ones are parsed in the `ParsePool`'s processes, several
    files ahead, while this process chunks, embeds and commits what is already parsed.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        vault: Vault,
        open_index: Callable[[], MilvusIndex],
        catalog: Catalog,
        janitor: Janitor,
        readers: LocalReaders,
        collection: str,
        embedder_for: Callable[[str], Embedder],
        cache_for: Callable[[str, str], EmbeddingCache],
        parsers: Parsers,
    ) -> None:
        self.settings = settings
        self.vault = vault
        self._open_index = open_index  # opened when first needed: after the embedder got ready
        self.catalog = catalog
        self.janitor = janitor
        self.readers = readers
        self.collection = collection
        # Resolved per run from the collection's state: its model, not necessarily the default one.
        self.embedder_for = embedder_for
        self.cache_for = cache_for
        self.parsers = parsers

    @property
    def index(self) -> MilvusIndex:
        return self._open_index()

    def state(self) -> CollectionState:
        state = self.catalog.collection(self.collection)
        if state is None:
            raise CairnError(f"collection {self.collection!r} was dropped while it was being written")
        return state

    def _wait_for_maintenance(self) -> CollectionState:
        """The collection's state once no rebuild or reindex holds it (they move its rows)."""
        deadline = time.monotonic() + 3600
        while (holder := self.catalog.maintenance_holder(self.collection)) is not None:
            if time.monotonic() > deadline:
                raise CairnError(f"collection {self.collection!r} is still being rebuilt or reindexed by {holder}")
            time.sleep(0.5)
        return self.state()

    def run(
        self,
        paths: Sequence[Path],
        *,
        sync: bool = False,
        progress: Callable[[IngestProgress], None] | None = None,
        access: DocumentAccess | None = None,
        sources: Mapping[str, str] | None = None,
        principal: Principal | None = None,
        metadata: Mapping[str, Mapping[str, str]] | None = None,
    ) -> IngestReport:
        """Ingest *paths*; with *access*, every document named gets that tenant and ACL.

        *metadata* gives documents (by source) fields that every chunk of their new version carries
        and search filters can use (``metadata.team = "hr"``); the parser's own fields win a clash.

        A document is identified by its source: the file's path relative to the folder given that
        holds it (`local_identities`), or the name *sources* gives that path (an upload's name, a
        source's key), so the same name is the same document wherever the bytes were staged. A
        document recorded under a file's absolute path by an earlier version of cairn is renamed to
        its new identity on its next ingest: it keeps its id, its versions and its ACL.

        Without *access*, new documents are visible to everyone in the ``default`` tenant and known
        documents keep theirs (a plain re-ingest never widens an ACL). With it, an unchanged
        document whose ACL differs gets the new one without being parsed or embedded again.
        """
        self.access = access
        self.principal = principal
        self._sources = {str(Path(k).expanduser().absolute()): v for k, v in (sources or {}).items()}
        self._named = set(self._sources)
        self._metadata = metadata or {}
        started = time.perf_counter()
        clock = _StageClock()
        state = self._wait_for_maintenance()
        self.embedder = self.embedder_for(state.embed_model)
        # The run's tenant: the caller's for a key (always given then), else the local default.
        self.cache = self.cache_for(state.embed_model, access.tenant if access is not None else "default")
        report = IngestReport(collection=state.name)
        with clock.stage("discover"):
            files, missing = discover(paths)
        report.files = len(files)
        report.failed.extend(missing)
        self._sources = {**local_identities(paths, files), **self._sources}
        with clock.stage("hash"):
            known = self._live_digests(files)
        # New documents will certainly be embedded: the embedder may get ready (start its worker) while the
        # index opens and the first files are parsed. Known ones count once their bytes are found changed.
        for path in files:
            if self._source(str(path)) not in known:
                self._expect(path)
        self.index.ensure_collection(state.index_name, state.dim)
        self.sweep(state)
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
                    state_of_file = self._file_state(path, known)
                if state_of_file == "changed":
                    if self._source(str(path)) in known:
                        self._expect(path)
                    yield str(path)
                else:
                    source = self._source(str(path))
                    if state_of_file == "forbidden":
                        report.failed.append(FailedFile(path=source, error=_NOT_YOURS))
                        step(source, "failed")
                        continue
                    if state_of_file == "unchanged":
                        report.unchanged += 1
                        regranted.append(known[source].doc_id)
                    else:
                        report.failed.append(FailedFile(path=source, error=state_of_file))
                    step(source, "unchanged" if state_of_file == "unchanged" else "failed")

        # A full batch is embedded in the background while this thread commits the batch before it and
        # prepares the next one: the model does not wait for vault writes, index inserts or parsing.
        embedding: tuple[_Batch, Future[Vector]] | None = None

        def hand_over(full: _Batch) -> None:
            nonlocal embedding
            previous = embedding
            after = previous[1] if previous is not None else None
            embedding = (full, self._embed_ahead(full, after, clock)) if full.documents else None
            if previous is not None:
                self._commit_and_acknowledge(*previous, report, clock, step)

        batch = _Batch()
        outcomes = self.parsers.parse(changed_files())
        while True:
            with clock.stage("parse_wait"):
                parsed = next(outcomes, None)
            if parsed is None:
                break
            clock.add("parse", parsed.seconds)
            outcome = self._prepare(parsed, known, batch, report, clock)
            if outcome != "ingested":
                step(self._source(parsed.path), outcome)
            if batch.chunk_count >= self.settings.ingest_batch_chunks:
                hand_over(batch)
                batch = _Batch()
        hand_over(batch)
        hand_over(_Batch())
        if sync:
            with clock.stage("publish"):
                report.removed = self._sync(paths, {self._source(str(p)) for p in files})
        if access is not None:
            with clock.stage("publish"):
                self._grant(regranted, access)
        with clock.stage("publish"):
            self.sweep(self.state())
        clock.add("total", time.perf_counter() - started)
        report.seconds = clock.rounded()
        return report

    def sweep(self, state: CollectionState) -> int:
        """Delete rows no reader can see any more (see `cairn.catalog.janitor`)."""
        return self.janitor.sweep(state)

    # -- per file ----------------------------------------------------------------------------
    def _live_digests(self, files: Sequence[Path]) -> dict[str, DocumentRecord]:
        """The known documents among *files*, by source, each with its live version.

        A file known only by its absolute path (how cairn named files before sources had identities)
        has that document renamed to the file's identity first, its index rows rewritten to match.
        """
        known = self.catalog.documents_by_source(self.collection, [self._source(str(path)) for path in files])
        legacy = {
            str(path): self._source(str(path))
            for path in files
            if str(path) not in self._named and self._source(str(path)) not in known
        }
        # Only the host renames: a key never changes another document's name, even to its identity.
        if (
            legacy
            and self.principal is None
            and (old := self.catalog.documents_by_source(self.collection, list(legacy)))
        ):
            renamed = self.catalog.rename_sources(self.collection, {path: legacy[path] for path in old})
            state = self.state()
            for doc in old.values():
                if doc.doc_id in renamed:
                    self.vault.record_event(state.name, "source", doc.doc_id, source=legacy[doc.source])
            self._rewrite_rows(renamed)
            known.update(self.catalog.documents_by_source(self.collection, [legacy[path] for path in old]))
        return known

    def _source(self, path: str) -> str:
        """The document source of a local file: its name among *sources*, else its identity (`local_identities`)."""
        return self._sources.get(path, path)

    def _expect(self, path: Path) -> None:
        """Tell the embedder how many chunks this file will likely bring, so it can get ready early."""
        if isinstance(self.embedder, ExpectsDocuments):
            with contextlib.suppress(OSError):
                self.embedder.expect_documents(1 + path.stat().st_size // _BYTES_PER_CHUNK)

    def _file_state(self, path: Path, known: dict[str, DocumentRecord]) -> str:
        """``unchanged``, ``changed``, or why the file cannot be read."""
        try:
            digest = _file_sha256(path)
        except OSError as exc:
            return f"cannot read the file: {exc.strerror}"
        record = known.get(self._source(str(path)))
        if record is not None and self.principal is not None and not permits(self.principal, record):
            # Replacing a document needs the right to see it: otherwise a key could take over (and read
            # the history of) a document of another group or tenant just by uploading under its name.
            return "forbidden"
        live = record.live_version() if record else None
        return "unchanged" if live is not None and live.sha256 == digest else "changed"

    def _prepare(
        self,
        parsed: ParseOutcome,
        known: dict[str, DocumentRecord],
        batch: _Batch,
        report: IngestReport,
        clock: _StageClock,
    ) -> str:
        source = self._source(parsed.path)
        if parsed.problem is not None:
            problem = parsed.problem.model_copy(update={"path": source})
            (report.skipped if parsed.skipped else report.failed).append(problem)
            return "skipped" if parsed.skipped else "failed"
        document = parsed.parsed
        assert document is not None
        report.skipped.extend(document.skipped)
        report.failed.extend(document.failed)
        report.warnings.extend(
            warning.model_copy(update={"path": source + warning.path.removeprefix(parsed.path)})
            if warning.path.startswith(parsed.path)
            else warning
            for warning in document.warnings
        )
        record = known.get(source)
        doc_id = record.doc_id if record is not None else new_document_id()
        try:
            with clock.stage("chunk"):
                chunks = chunk_elements(
                    document.elements,
                    doc_id=doc_id,
                    version=0,
                    tokenizer=self.embedder,
                    max_tokens=self.settings.chunk_max_tokens,
                    overlap_tokens=self.settings.chunk_overlap_tokens,
                    heading_context=self.settings.embed_heading_context,
                )
            if not chunks:
                raise CairnError("no text found to index")
            if extra := self._metadata.get(source):
                chunks = [chunk.model_copy(update={"metadata": {**extra, **chunk.metadata}}) for chunk in chunks]
            with clock.stage("store"):
                data = Path(parsed.path).read_bytes()
                if sha256_hex(data) != parsed.sha256:
                    raise CairnError("the file changed while it was being ingested; ingest it again")
                self.vault.put_blob(data)
        except CairnError as exc:
            report.failed.append(FailedFile(path=source, error=str(exc)))
            return "failed"
        except OSError as exc:
            report.failed.append(FailedFile(path=source, error=f"cannot read the file: {exc.strerror}"))
            return "failed"
        access = self.access
        draft = VersionDraft(
            doc_id=doc_id,
            source=source,
            sha256=parsed.sha256,
            size=parsed.size,
            mime=document.mime,
            chunks=len(chunks),
            tenant=access.tenant if access is not None else (record.tenant if record else "default"),
            allowed=list(access.allowed) if access is not None and access.allowed is not None else None,
        )
        batch.documents.append(_Prepared(draft=draft, chunks=chunks, format=document.format))
        batch.chunk_count += len(chunks)
        return "ingested"

    # -- per batch ---------------------------------------------------------------------------
    def _embed_ahead(self, batch: _Batch, after: Future[Vector] | None, clock: _StageClock) -> Future[Vector]:
        """The batch's vectors, computed on a thread of their own once the batch *after* which it comes is.

        A daemon thread, not an executor: a process stopped by Ctrl-C must not wait for a batch to finish.
        """
        context = self.settings.embed_heading_context
        texts = [embedding_input(chunk, heading_context=context) for doc in batch.documents for chunk in doc.chunks]
        vectors: Future[Vector] = Future()

        def embed() -> None:
            if after is not None:
                wait([after])  # one batch at a time; its failure is the commit's to report
            if not vectors.set_running_or_notify_cancel():
                return
            try:
                with clock.stage("embed"):
                    vectors.set_result(embed_with_cache(self.embedder, self.cache, texts)[0])
            except BaseException as exc:
                vectors.set_exception(exc)

        threading.Thread(target=embed, name="cairn-embed-batch", daemon=True).start()
        return vectors

    def _commit_and_acknowledge(
        self,
        batch: _Batch,
        vectors: Future[Vector],
        report: IngestReport,
        clock: _StageClock,
        step: Callable[[str, str], None],
    ) -> None:
        with clock.stage("embed_wait"):
            ready = vectors.result()
        outcomes = self._commit(batch, ready, report, clock)
        for doc in batch.documents:  # acknowledged only now: stored, indexed and live
            step(doc.draft.source, outcomes.get(doc.draft.doc_id, "ingested"))

    def _commit(self, batch: _Batch, vectors: Vector, report: IngestReport, clock: _StageClock) -> dict[str, str]:
        """Reserve an embedded batch's versions, store and index them, then make them live in one transaction."""
        if not batch.documents:
            return {}
        state = self._wait_for_maintenance()
        with clock.stage("store"):
            self.cache.flush()
            # 1. Reserve: numbered and pending, so readers hide the rows until the batch is live.
            reserved = self.catalog.reserve(
                state.name,
                [doc.draft for doc in batch.documents],
                writer=this_process(),
                chunks_key=lambda doc_id, number: self.vault.chunks_key(state.name, doc_id, number, state.generation),
            )
        try:
            return self._store_and_publish(batch, reserved, vectors, state, report, clock)
        except BaseException:
            # The batch failed after its versions were reserved (the vault, the index or the catalog went away, or
            # the process is stopping): give the numbers up now. Left pending, they would stay hidden rows of a
            # live writer, which nothing abandons, and every maintenance run (verify, reindex) would wait on them.
            rowsets = [RowSet(doc_id=record.doc_id, version=version.version) for record, version in reserved]
            try:
                self.catalog.abandon(state.name, rowsets, generation=state.generation)
            except Exception as exc:  # the catalog itself is away: the versions go once this process has ended
                log.warning("could not give up the versions of a failed batch (%s); they go once it exits", exc)
            raise

    def _store_and_publish(
        self,
        batch: _Batch,
        reserved: Sequence[tuple[DocumentRecord, VersionRecord]],
        vectors: Vector,
        state: CollectionState,
        report: IngestReport,
        clock: _StageClock,
    ) -> dict[str, str]:
        offset = 0
        for doc, (record, version) in zip(batch.documents, reserved, strict=True):
            doc.record, doc.version = record, version
            doc.draft = doc.draft.model_copy(update={"doc_id": record.doc_id})
            doc.chunks = _numbered(doc.chunks, record.doc_id, version.version)
            doc_vectors = vectors[offset : offset + len(doc.chunks)]
            offset += len(doc.chunks)
            with clock.stage("store"):
                self._write_chunks(doc, doc_vectors, state)
                if state.retention is not None:
                    self.vault.retain_version(version, state.retention)
            with clock.stage("index"):
                self.index.insert(state.index_name, IndexedDocument.of(record, version), doc.chunks, doc_vectors)
        # 2. Publish: every document of the batch switches to its new version in one transaction.
        with clock.stage("publish"):
            published = self.catalog.publish(
                state.name,
                [(doc.draft, doc.version.version) for doc in batch.documents if doc.version is not None],
                generation=state.generation,
            )
        outcomes: dict[str, str] = {}
        for doc, publication in zip(sorted(batch.documents, key=lambda d: d.draft.doc_id), published, strict=True):
            if publication.outcome == "duplicate":  # another writer stored the same bytes first
                self.vault.forget_version_files(state.name, doc.draft.doc_id, publication.version, state.generation)
                report.unchanged += 1
                outcomes[doc.draft.doc_id] = "unchanged"
                continue
            outcomes[doc.draft.doc_id] = "ingested"
            report.ingested += 1
            report.chunks += len(doc.chunks)
            report.tokens += sum(chunk.token_count for chunk in doc.chunks)
            report.formats[doc.format] = report.formats.get(doc.format, 0) + 1
        # 3. The replaced rows are deleted once no reader can still be using them.
        with clock.stage("publish"):
            self.sweep(state)
        return outcomes

    def _write_chunks(self, doc: _Prepared, doc_vectors: Vector, state: CollectionState) -> None:
        assert doc.record is not None
        assert doc.version is not None
        self.vault.write_chunks(
            doc.version.chunks_key,
            doc.chunks,
            doc_vectors,
            metadata={
                "doc_id": doc.record.doc_id,
                "source": doc.record.source,
                "version": str(doc.version.version),
                "embed_model": state.embed_model,
            },
        )
        self.vault.write_version_record(state, doc.record, doc.version)

    def change_access(self, doc_ids: Sequence[str], access: DocumentAccess) -> list[DocumentRecord]:
        """Give documents a new tenant and ACL: the catalog first (authoritative for readers), then the rows."""
        return self._grant(list(doc_ids), access)

    def _grant(self, doc_ids: list[str], access: DocumentAccess) -> list[DocumentRecord]:
        state = self.state()
        changed = self.catalog.set_access(
            state.name, doc_ids, tenant=access.tenant, allowed=list(access.allowed) if access.allowed else None
        )
        for doc in changed:
            self.vault.record_event(state.name, "access", doc.doc_id, tenant=doc.tenant, allowed=doc.allowed)
        self._rewrite_rows([doc.doc_id for doc in changed])
        return changed

    def _rewrite_rows(self, doc_ids: Sequence[str]) -> None:
        """Write the live rows of *doc_ids* again from the vault, with the catalog's access and source."""
        if not doc_ids:
            return
        state = self.state()
        sources = [doc.source for doc in self.catalog.documents(state.name, doc_ids).values()]
        current = self.catalog.documents_by_source(state.name, sources)
        for doc in current.values():
            version = doc.live_version()
            if version is None:
                continue
            chunks, vectors = self.vault.read_chunks(version.chunks_key, doc_id=doc.doc_id, version=version.version)
            self.index.insert(state.index_name, IndexedDocument.of(doc, version), chunks, vectors, replace=True)

    def remove(self, doc_ids: Sequence[str]) -> list[DocumentRecord]:
        """Take live documents out of the collection (their vault versions stay); return them."""
        state = self.state()
        taken = self.catalog.take_down(state.name, doc_ids, generation=state.generation)
        for doc in taken:
            self.vault.record_event(state.name, "take_down", doc.doc_id)
        self.sweep(state)
        return taken

    def _sync(self, roots: Sequence[Path], seen: set[str]) -> int:
        """Take down the collection's plainly ingested documents whose files are no longer under *roots*.

        The given paths are the whole of what a plain ingest put in the collection: a document with a
        local identity (`is_local_identity`) not found under them is removed. Uploads and the
        documents of registered sources are never touched; a document still named by an absolute
        path is removed only when that path lies under *roots* and no longer exists.
        """
        prefixes = [str(r.expanduser().absolute()) for r in roots]
        owned = self.catalog.sourced_documents(self.collection)

        def gone(source: str) -> bool:
            if source in seen or not is_local_identity(source):
                return False
            if not os.path.isabs(source):
                return True
            under = any(source == p or source.startswith(p.rstrip(os.sep) + os.sep) for p in prefixes)
            return under and not Path(source).exists()

        removed = [
            doc.doc_id
            for doc in self.catalog.iter_live_documents(self.collection)
            if doc.doc_id not in owned and gone(doc.source)
        ]
        return len(self.remove(removed)) if removed else 0


def _numbered(chunks: list[Chunk], doc_id: str, version: int) -> list[Chunk]:
    """The chunks of a version whose document id and number the catalog has just given (ids depend on them)."""
    return [
        chunk.model_copy(
            update={"doc_id": doc_id, "version": version, "chunk_id": chunk_id(doc_id, version, chunk.ordinal)}
        )
        for chunk in chunks
    ]
