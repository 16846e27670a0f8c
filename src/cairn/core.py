"""`Cairn`: the one object the CLI, the HTTP API and Python users all drive."""

from __future__ import annotations

import getpass
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cairn.access import authorize, permits, retrieval_filter
from cairn.audit import AuditLog
from cairn.auth import ApiKey, KeyStore, Principal, validate_name
from cairn.embed.base import Embedder
from cairn.errors import ConfigError, Forbidden, InvalidRequest, NotFound, StorageError
from cairn.filters import compile_filter, filter_from_json, parse_filter
from cairn.generate import extractive_answer
from cairn.index.milvus import SEARCH_MODES, MilvusIndex, SearchMode
from cairn.ingest import DocumentAccess, Ingestor, IngestProgress, document_id
from cairn.maintenance import ReindexReport, VerifyReport, rebuild, reindex, verify
from cairn.models import (
    Answer,
    CollectionInfo,
    DocumentInfo,
    DocumentVersionInfo,
    IngestReport,
    SearchResult,
)
from cairn.parse import ParseLimits
from cairn.parse.pool import ParsePool
from cairn.retrieve import candidate_pool, promote_exact_phrases
from cairn.settings import Settings, validate_collection_name
from cairn.snapshots import LiveManifest
from cairn.vault import DocumentRecord, EmbeddingCache, Manifest, Vault
from cairn.vault.factory import open_store
from cairn.vault.manifest import Retention

__all__ = ["Cairn"]

MAX_K = 1000


class Cairn:
    """Ingest, search and ask over collections kept in a vault and indexed in Milvus.

    Heavy parts (the embedding model, the engine) load on first use. Safe to share between
    threads; one ingest per collection runs at a time, and searches never wait for it.
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        self.settings = settings or Settings(**overrides)
        self.vault = Vault(open_store(self.settings))
        self._index: MilvusIndex | None = None
        self._embedder: Embedder | None = None
        self._other_embedders: dict[str, Embedder] = {}
        self._caches: dict[str, EmbeddingCache] = {}
        self._live: dict[str, LiveManifest] = {}
        self._parsers: ParsePool | None = None
        self._audit: AuditLog | None = None
        self._lock = threading.RLock()

    # -- components ----------------------------------------------------------------------------
    @property
    def index(self) -> MilvusIndex:
        with self._lock:
            if self._index is None:
                self.settings.home.mkdir(parents=True, exist_ok=True)
                token = self.settings.milvus_token.get_secret_value() if self.settings.milvus_token else None
                self._index = MilvusIndex(self.settings.engine_uri, token=token, dense_index=self.settings.dense_index)
            return self._index

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                from cairn.embed.local import load_embedder

                self._embedder = load_embedder(
                    self.settings.embed_model, self.settings.embed_device, self.settings.embed_batch_size
                )
            return self._embedder

    @property
    def parsers(self) -> ParsePool:
        """The parser processes, started on first use and kept until `close`."""
        with self._lock:
            if self._parsers is None:
                settings = self.settings
                self._parsers = ParsePool(
                    workers=settings.parse_workers,
                    timeout_s=settings.parse_timeout_s,
                    memory_mb=settings.parse_memory_mb,
                    limits=ParseLimits(
                        max_depth=settings.archive_max_depth,
                        max_members=settings.archive_max_members,
                        max_expanded_bytes=settings.archive_max_expanded_mb * 1024 * 1024,
                    ),
                )
            return self._parsers

    @property
    def audit(self) -> AuditLog:
        """The vault's audit log: every change, and every retrieval made for a key."""
        with self._lock:
            if self._audit is None:
                self._audit = AuditLog(self.vault.store)
            return self._audit

    @property
    def keys(self) -> KeyStore:
        return KeyStore(self.vault.store)

    def _record(
        self,
        principal: Principal | None,
        action: str,
        *,
        collection: str | None = None,
        target: str | None = None,
        documents: Sequence[str] = (),
        detail: str | None = None,
    ) -> None:
        actor = f"key:{principal.key_id}" if principal is not None else f"cli:{_local_user()}"
        self.audit.append(
            actor=actor, action=action, collection=collection, target=target, documents=documents, detail=detail
        )

    def create_key(self, *, principal: Principal | None = None, **fields: Any) -> tuple[str, ApiKey]:
        """Create an API key (admins only, within their tenant); the token is returned once."""
        authorize(principal, "manage")
        if principal is not None and fields.get("tenant") != principal.tenant:
            raise Forbidden(f"this key belongs to tenant {principal.tenant!r} and cannot make keys for another")
        token, record = self.keys.create(**fields)
        self._record(principal, "key.create", target=record.key_id, detail=f"{record.role} of {record.tenant}")
        return token, record

    def revoke_key(self, key_id: str, *, principal: Principal | None = None) -> ApiKey:
        """Revoke a key; it fails from the next request on."""
        authorize(principal, "manage")
        record = self.keys.get(key_id)
        if principal is not None and record.tenant != principal.tenant:
            raise NotFound(f"no key {key_id!r}")
        record = self.keys.revoke(key_id)
        self._record(principal, "key.revoke", target=key_id)
        return record

    def embedder_for(self, model: str) -> Embedder:
        """The embedder of a model: a collection is searched and extended with the model it was built with."""
        if model == self.settings.embed_model:
            return self.embedder
        with self._lock:
            if model not in self._other_embedders:
                from cairn.embed.local import load_embedder

                self._other_embedders[model] = load_embedder(
                    model, self.settings.embed_device, self.settings.embed_batch_size
                )
            return self._other_embedders[model]

    def _collection(self, name: str | None) -> str:
        try:
            return validate_collection_name(name or self.settings.default_collection)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc

    def _live_manifest(self, collection: str, *, create: bool = False) -> LiveManifest:
        with self._lock:
            live = self._live.get(collection)
            if live is not None:
                return live
            manifest = self.vault.load_manifest(collection)
            if manifest is None:
                if not create:
                    raise NotFound(
                        f"no collection {collection!r}; ingest documents into it first "
                        f"(cairn ingest PATH --collection {collection})"
                    )
                embedder = self.embedder
                manifest = Manifest(collection=collection, embed_model=embedder.model_name, dim=embedder.dim)
                self.vault.save_manifest(manifest)
            live = self._live[collection] = LiveManifest(manifest)
            return live

    def _cache(self, model: str) -> EmbeddingCache:
        with self._lock:
            if model not in self._caches:
                self._caches[model] = EmbeddingCache(self.vault, model)
            return self._caches[model]

    # -- ingest --------------------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[str | Path],
        *,
        collection: str | None = None,
        sync: bool = False,
        progress: Callable[[IngestProgress], None] | None = None,
        tenant: str | None = None,
        allow: Sequence[str] | None = None,
        principal: Principal | None = None,
    ) -> IngestReport:
        """Ingest files and folders; unchanged files are skipped, changed ones replaced.

        *tenant* and *allow* (groups, ``user:NAME``, ``key:ID`` or ``*``) set who may see the
        documents; a key may only ingest into its own tenant.
        """
        name = self._collection(collection)
        authorize(principal, "ingest", name)
        access = _document_access(tenant, allow, principal)
        ingestor = self._ingestor(name, create=True)
        report = ingestor.run([Path(p) for p in paths], sync=sync, progress=progress, access=access)
        self._record(
            principal,
            "ingest",
            collection=name,
            detail=f"{report.ingested} ingested, {report.unchanged} unchanged, {report.removed} removed, "
            f"{len(report.failed)} failed",
        )
        return report

    def set_access(
        self,
        refs: Sequence[str],
        *,
        allow: Sequence[str],
        tenant: str | None = None,
        collection: str | None = None,
        principal: Principal | None = None,
    ) -> list[DocumentInfo]:
        """Change who may see documents; effective for the very next request."""
        name = self._collection(collection)
        authorize(principal, "acl", name)
        access = _document_access(tenant, allow, principal)
        assert access is not None
        ingestor = self._ingestor(name)
        with ingestor.live.snapshot() as manifest:
            ids = [self._resolve(manifest, ref, live_only=False, principal=principal) for ref in refs]
        ingestor.change_access(ids, access)
        self._record(
            principal,
            "acl.change",
            collection=name,
            documents=ids,
            detail=f"{access.tenant}: {','.join(access.allowed)}",
        )
        with ingestor.live.snapshot() as manifest:
            return [_document_info(manifest.documents[doc_id]) for doc_id in ids]

    def _ingestor(self, collection: str, *, create: bool = False) -> Ingestor:
        live = self._live_manifest(collection, create=create)
        return Ingestor(
            settings=self.settings,
            vault=self.vault,
            index=self.index,
            embedder_for=self.embedder_for,
            cache_for=self._cache,
            live=live,
            parsers=self.parsers,
        )

    # -- retrieval -----------------------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        collection: str | None = None,
        k: int = 10,
        mode: SearchMode = "hybrid",
        principal: Principal | None = None,
        filter: str | dict[str, object] | list[object] | None = None,  # noqa: A002 - the API's word
    ) -> SearchResult:
        """The *k* chunks that best match *query*, by dense, keyword (BM25) or hybrid search.

        *filter* narrows the search in the grammar of `cairn.filters` (``mime = "application/pdf"
        and version >= 2``) or its JSON form. With a *principal*, only documents of its tenant whose
        ACL admits it are searched, whatever the filter says.
        """
        if not query.strip():
            raise InvalidRequest("the query is empty; pass the words to search for")
        if not 1 <= k <= MAX_K:
            raise InvalidRequest(f"k={k} is out of range; choose 1 to {MAX_K}")
        if mode not in SEARCH_MODES:
            raise InvalidRequest(f"unknown search mode {mode!r}; choose one of {', '.join(SEARCH_MODES)}")
        name = self._collection(collection)
        authorize(principal, "search", name)
        live = self._live_manifest(name)
        with live.snapshot() as manifest:
            # The snapshot names the index and the model together, so a reindex switches both at once.
            vector = self.embedder_for(manifest.embed_model).embed_query(query) if mode != "keyword" else None
            self.index.ensure_collection(manifest.index_name, manifest.dim)
            hits = self.index.search(
                manifest.index_name,
                mode=mode,
                k=candidate_pool(k) if mode == "hybrid" else k,
                query_text=query,
                query_vector=vector,
                hidden=manifest.hidden_rows(),
                rrf_k=self.settings.rrf_k,
                constraint=retrieval_filter(principal, _compiled(filter)),
            )
            # The published manifest is authoritative: a changed ACL or a removed document is
            # enforced here even while its index rows are still being rewritten.
            hits = [
                hit
                for hit in hits
                if permits(principal, doc := manifest.documents.get(hit.doc_id))
                and doc is not None
                and doc.live == hit.version
            ]
        if mode == "hybrid":
            hits = promote_exact_phrases(query, hits, k)
        if principal is not None:  # retrievals made for a key are audited with what they returned
            self._record(principal, "search", collection=name, documents=sorted({h.doc_id for h in hits}))
        return SearchResult(hits=hits)

    def ask(
        self, question: str, *, collection: str | None = None, k: int = 8, principal: Principal | None = None
    ) -> Answer:
        """A grounded answer to *question*: the best supporting sentences, each cited."""
        hits = self.search(question, collection=collection, k=k, mode="hybrid", principal=principal).hits
        with self._live_manifest(self._collection(collection)).snapshot() as manifest:
            model = manifest.embed_model
        return extractive_answer(question, hits, self.embedder_for(model))

    # -- collections and documents ---------------------------------------------------------------
    def collections(self) -> list[CollectionInfo]:
        return [self.collection_info(name) for name in self.vault.list_collections()]

    def collection_info(self, collection: str | None = None) -> CollectionInfo:
        name = self._collection(collection)
        with self._live_manifest(name).snapshot() as manifest:
            docs = manifest.live_documents()
            chunks = sum(v.chunks for d in docs if (v := d.live_version()) is not None)
            return CollectionInfo(
                name=name,
                documents=len(docs),
                chunks=chunks,
                rows=self.index.count(manifest.index_name),
                embed_model=manifest.embed_model,
                dim=manifest.dim,
                engine=self.index.engine,
                retention=f"{manifest.retention.mode} {manifest.retention.days} days" if manifest.retention else None,
            )

    def drop_collection(self, collection: str) -> None:
        """Delete the collection's index and manifest. Original document bytes stay in the vault."""
        name = self._collection(collection)
        live = self._live_manifest(name)
        with live.write_lock:
            self.index.drop_collection(live.draft().index_name)
            self.vault.delete_collection(name)
            with self._lock:
                self._live.pop(name, None)

    def documents(self, *, collection: str | None = None, principal: Principal | None = None) -> list[DocumentInfo]:
        name = self._collection(collection)
        authorize(principal, "read", name)
        with self._live_manifest(name).snapshot() as manifest:
            visible = [doc for doc in manifest.live_documents() if permits(principal, doc)]
            return [_document_info(doc) for doc in sorted(visible, key=lambda d: d.source)]

    def remove_documents(
        self, refs: Sequence[str], *, collection: str | None = None, principal: Principal | None = None
    ) -> list[DocumentInfo]:
        """Remove documents named by id or source path; raise NotFound naming any that is not live."""
        name = self._collection(collection)
        authorize(principal, "delete", name)
        ingestor = self._ingestor(name)
        with ingestor.live.snapshot() as manifest:
            ids = [self._resolve(manifest, ref, principal=principal) for ref in refs]
        removed = [_document_info(doc) for doc in ingestor.remove(ids)]
        self._record(principal, "document.remove", collection=name, documents=ids)
        return removed

    def document(self, ref: str, *, collection: str | None = None, principal: Principal | None = None) -> DocumentInfo:
        """A document by id or source path, with every version the vault keeps (live or removed)."""
        name = self._collection(collection)
        authorize(principal, "read", name)
        with self._live_manifest(name).snapshot() as manifest:
            return _document_info(
                manifest.documents[self._resolve(manifest, ref, live_only=False, principal=principal)]
            )

    def document_bytes(
        self,
        ref: str,
        *,
        version: int | None = None,
        collection: str | None = None,
        principal: Principal | None = None,
    ) -> bytes:
        """The exact bytes of a document version (default: the live one), checked against their sha256."""
        info = self.document(ref, collection=collection, principal=principal)
        if principal is not None:
            self._record(principal, "document.get", collection=collection, documents=[info.doc_id])
        latest = max((v.version for v in info.versions), default=0)
        number = version if version is not None else (info.version or latest)
        chosen = next((v for v in info.versions if v.version == number), None)
        if chosen is None:
            known = ", ".join(str(v.version) for v in info.versions) or "none"
            raise NotFound(f"document {info.source!r} has no version {number}; versions kept: {known}")
        return self.vault.get_blob(chosen.sha256)

    @staticmethod
    def _resolve(manifest: Manifest, ref: str, *, live_only: bool = True, principal: Principal | None = None) -> str:
        """The id of a document named by id or path; one the principal may not see is not found, alike."""
        by_path = document_id(str(Path(ref).expanduser().absolute()))
        for candidate in (ref, by_path):
            doc = manifest.documents.get(candidate)
            if doc is not None and (doc.live is not None or not live_only) and permits(principal, doc):
                return candidate
        raise NotFound(
            f"no document {ref!r} in collection {manifest.collection!r}; `cairn docs list` shows ids and sources"
        )

    def purge_documents(
        self, refs: Sequence[str], *, collection: str | None = None, principal: Principal | None = None
    ) -> list[DocumentInfo]:
        """Remove documents from search and delete every stored version of them from the vault.

        Original bytes another document version still uses (in any collection) are kept. Under
        object-lock retention the store refuses the deletion: the documents are then out of search
        but their versions stay, and the `StorageError` says until when.
        """
        name = self._collection(collection)
        authorize(principal, "delete", name)
        live = self._live_manifest(name)
        with live.snapshot() as manifest:
            ids = [self._resolve(manifest, ref, live_only=False, principal=principal) for ref in refs]
        self._ingestor(name).remove([doc_id for doc_id in ids])
        with live.write_lock:
            manifest = live.draft()
            references = self.vault.blob_references()
            purged: list[DocumentInfo] = []
            try:
                for doc_id in ids:
                    doc = manifest.documents[doc_id]
                    info = _document_info(doc)
                    for version in list(doc.versions):
                        try:
                            self.vault.purge_version(version, keep_blob=references.get(version.sha256, 0) > 1)
                        except StorageError as exc:
                            raise StorageError(
                                f"{doc.source} was removed from search, but its stored versions are kept: {exc}",
                                key=exc.key,
                            ) from exc
                        references[version.sha256] = references.get(version.sha256, 1) - 1
                        doc.versions.remove(version)
                    del manifest.documents[doc_id]
                    purged.append(info)
            finally:
                # Record exactly what was deleted, also when a locked version stopped the purge.
                self.vault.save_manifest(manifest)
                live.publish(manifest)
                self._record(principal, "document.purge", collection=name, documents=[d.doc_id for d in purged])
            return purged

    def set_retention(self, mode: str | None, days: int = 0, *, collection: str | None = None) -> None:
        """Keep the collection's versions under object-lock retention for *days* (``None`` mode: stop).

        Existing versions are locked for *days* from now too. Needs an S3 bucket with Object Lock.
        """
        name = self._collection(collection)
        live = self._live_manifest(name)
        retention = None
        if mode is not None:
            try:
                retention = Retention.model_validate({"mode": mode.upper(), "days": days})
            except ValueError as exc:
                raise InvalidRequest(
                    f"invalid retention: mode GOVERNANCE or COMPLIANCE, 1 to 36500 days ({exc})"
                ) from exc
            if not self.vault.store.supports_retention():
                raise ConfigError(
                    f"the vault at {self.vault.store.describe()} has no object lock; retention needs an S3 bucket "
                    "created with Object Lock enabled"
                )
        with live.write_lock:
            manifest = live.draft()
            manifest.retention = retention
            if retention is not None:
                for doc in manifest.documents.values():
                    for version in doc.versions:
                        self.vault.retain_version(version, retention)
            self.vault.save_manifest(manifest)
            live.publish(manifest)

    # -- maintenance -----------------------------------------------------------------------------
    def rebuild(self, *, collection: str | None = None) -> int:
        """Re-create the collection's index from the vault, without embedding; return rows inserted."""
        name = self._collection(collection)
        return rebuild(self.vault, self.index, self._live_manifest(name))

    def reindex(
        self,
        model: str,
        *,
        collection: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> ReindexReport:
        """Re-embed the collection with *model* into a new index and switch searches to it atomically.

        Searches (from other threads, or the HTTP service) keep being answered from the old index
        until the switch; call this from a background thread to keep serving meanwhile.
        """
        name = self._collection(collection)
        embedder = self.embedder_for(model)
        return reindex(
            self.vault,
            self.index,
            self._live_manifest(name),
            embedder=embedder,
            cache=self._cache(embedder.model_name),
            progress=progress,
        )

    def verify(self, *, collection: str | None = None, repair: bool = False) -> VerifyReport:
        """Reconcile the vault and the index: missing and orphan rows, corrupt objects; repair the index."""
        name = self._collection(collection)
        return verify(self.vault, self.index, self._live_manifest(name), repair=repair)

    def close(self) -> None:
        with self._lock:
            if self._parsers is not None:
                self._parsers.close()
                self._parsers = None
            if self._index is not None:
                self._index.client.close()
                self._index = None

    def __enter__(self) -> Cairn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (containers)
        return str(os.getuid())


def _compiled(user_filter: str | dict[str, object] | list[object] | None) -> str | None:
    if user_filter is None or (isinstance(user_filter, str) and not user_filter.strip()):
        return None
    parsed = parse_filter(user_filter) if isinstance(user_filter, str) else filter_from_json(user_filter)
    return compile_filter(parsed)


def _document_access(
    tenant: str | None, allow: Sequence[str] | None, principal: Principal | None
) -> DocumentAccess | None:
    """The tenant and ACL to give documents; ``None`` when neither is asked for (keep what they have)."""
    if tenant is None and allow is None and principal is None:
        return None
    chosen = tenant or (principal.tenant if principal else "default")
    validate_name(chosen, "tenant")
    if principal is not None and chosen != principal.tenant:
        raise Forbidden(f"this key belongs to tenant {principal.tenant!r} and cannot place documents in {chosen!r}")
    entries: list[str] = []
    for raw in allow if allow is not None else ["*"]:
        entry = raw.strip()
        if entry == "*":
            entries.append(entry)
            continue
        kind, _, value = entry.rpartition(":")
        kind = kind or "group"
        if kind not in ("group", "user", "key"):
            raise InvalidRequest(f"invalid ACL entry {entry!r}: use *, a group name, user:NAME or key:ID")
        entries.append(f"{kind}:{validate_name(value, kind)}")
    if not entries:
        raise InvalidRequest("an ACL needs at least one entry; use * for everyone in the tenant")
    return DocumentAccess(tenant=chosen, allowed=tuple(sorted(set(entries))))


def _document_info(doc: DocumentRecord) -> DocumentInfo:
    live = doc.live_version()
    return DocumentInfo(
        doc_id=doc.doc_id,
        source=doc.source,
        mime=live.mime if live else "",
        tenant=doc.tenant,
        allowed=doc.allowed,
        version=doc.live or 0,
        chunks=live.chunks if live else 0,
        versions=[
            DocumentVersionInfo(
                version=v.version, sha256=v.sha256, size=v.size, mime=v.mime, created_at=v.created_at, chunks=v.chunks
            )
            for v in doc.versions
        ],
    )
