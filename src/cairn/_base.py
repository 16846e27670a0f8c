"""The parts every `Cairn` operation stands on: settings, vault, index, embedders, parsers, audit.

`Cairn` (core.py) is assembled from this base and two groups of operations, `DocumentOperations`
(_documents.py) and `Administration` (_admin.py), so that each module stays readable. Only
`Cairn` is public.
"""

from __future__ import annotations

import getpass
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from cairn.access import permits
from cairn.audit import AuditLog
from cairn.auth import KeyStore, Principal, validate_name
from cairn.catalog import Catalog, CollectionState, DocumentRecord, SqlCatalog
from cairn.catalog.janitor import Janitor, LocalReaders
from cairn.catalog.legacy import import_manifests
from cairn.catalog.restore import restore_from_vault
from cairn.embed.base import Embedder
from cairn.embed.local import SentenceTransformerEmbedder
from cairn.embed.query_cache import QueryEmbeddingCache
from cairn.errors import Forbidden, InvalidRequest, NotFound
from cairn.generate.pipeline import Generation
from cairn.index.milvus import MilvusIndex, open_index
from cairn.ingest import DocumentAccess, Ingestor
from cairn.models import (
    DocumentInfo,
    DocumentVersionInfo,
)
from cairn.parse import ParseLimits
from cairn.parse.pool import ParsePool
from cairn.settings import Settings, validate_collection_name
from cairn.vault import EmbeddingCache, Vault
from cairn.vault.factory import open_store

if TYPE_CHECKING:
    from cairn.ray_engine import RayEngine

MAX_K = 1000


class CairnBase:
    """Components loaded on first use, shared state, and the helpers the operations share."""

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        self.settings = settings or Settings(**overrides)
        self.vault = Vault(open_store(self.settings))
        self._index: MilvusIndex | None = None
        self._embedder: Embedder | None = None
        self._other_embedders: dict[str, Embedder] = {}
        self._caches: dict[tuple[str, str], EmbeddingCache] = {}
        self._catalog: Catalog | None = None
        self.readers = LocalReaders()
        self._parsers: ParsePool | None = None
        self._audit: AuditLog | None = None
        self._generation: Generation | None = None
        self.query_cache = QueryEmbeddingCache(self.settings.query_cache_size)
        self._lock = threading.RLock()

    # -- components ----------------------------------------------------------------------------
    @property
    def index(self) -> MilvusIndex:
        with self._lock:
            if self._index is None:
                self.settings.home.mkdir(parents=True, exist_ok=True)
                self._index = open_index(self.settings)
            return self._index

    @property
    def catalog(self) -> Catalog:
        """The catalog shared by every process, opened on first use.

        Opening migrates its schema, imports pre-catalog manifests, and, when the catalog is empty
        but the vault is not (a new machine on an existing bucket, or a lost database), recreates
        the collections from the vault's records.
        """
        with self._lock:
            if self._catalog is None:
                self.settings.home.mkdir(parents=True, exist_ok=True)
                catalog = SqlCatalog(self.settings.catalog_database)
                import_manifests(self.vault, catalog)
                if not catalog.collection_names():
                    restore_from_vault(self.vault, catalog)
                self._catalog = catalog
            return self._catalog

    @property
    def janitor(self) -> Janitor:
        """Deletes index rows no search can see any more (retired past the grace, or of dead writers)."""
        vault = self.vault
        return Janitor(
            self.catalog,
            delete_rows=lambda collection, rowsets: self.index.delete_rows(collection, rowsets),  # opened on use
            forget_files=lambda collection, rowset, generation: vault.forget_version_files(
                collection, rowset.doc_id, rowset.version, generation
            ),
            readers=self.readers,
            grace_s=self.settings.retire_grace,
            stale_after_s=self.settings.stale_writer_s,
        )

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                from cairn.embed.local import load_embedder

                self._embedder = load_embedder(
                    self.settings.embed_model,
                    self.settings.embed_device,
                    self.settings.embed_batch_size,
                    self.settings.embed_worker,
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
    def generation(self) -> Generation:
        """Answering, reranking and conversation steps, with the LLM and cross-encoder they use."""
        with self._lock:
            if self._generation is None:
                self._generation = Generation(self.settings)
            return self._generation

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

    def embedder_for(self, model: str) -> Embedder:
        """The embedder of a model: a collection is searched and extended with the model it was built with."""
        if model == self.settings.embed_model:
            return self.embedder
        with self._lock:
            if model not in self._other_embedders:
                from cairn.embed.local import load_embedder

                self._other_embedders[model] = load_embedder(
                    model, self.settings.embed_device, self.settings.embed_batch_size, self.settings.embed_worker
                )
            return self._other_embedders[model]

    def _collection(self, name: str | None) -> str:
        try:
            return validate_collection_name(name or self.settings.default_collection)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc

    def _state(self, collection: str, *, create: bool = False) -> CollectionState:
        """The collection as the catalog has it now; created with the default model when *create*."""
        state = self.catalog.collection(collection)
        if state is not None:
            return state
        if not create:
            raise NotFound(
                f"no collection {collection!r}; ingest documents into it first "
                f"(cairn ingest PATH --collection {collection})"
            )
        embedder = self.embedder
        state = self.catalog.ensure_collection(collection, embed_model=embedder.model_name, dim=embedder.dim)
        self.vault.write_collection_record(state)
        return state

    def _cache(self, model: str, tenant: str = "default") -> EmbeddingCache:
        """The embedding cache of one model and one tenant (see `EmbeddingCache` for why per tenant)."""
        with self._lock:
            if (model, tenant) not in self._caches:
                self._caches[(model, tenant)] = EmbeddingCache(self.vault, model, tenant)
            return self._caches[(model, tenant)]

    def _check_tenant_may_write(self, collection: str, principal: Principal | None) -> None:
        """A key may add documents only to a new or empty collection, or one holding its tenant's documents.

        Otherwise a tenant could put documents into another tenant's collection (and so stop that tenant's
        admin from dropping it, or learn from listings what it is called).
        """
        if principal is None or self.catalog.collection(collection) is None:
            return
        if self.catalog.tenant_standing(collection, principal.tenant) == "foreign":
            raise Forbidden(
                f"collection {collection!r} holds other tenants' documents only, so a key of tenant "
                f"{principal.tenant!r} cannot add to it; choose another collection name"
            )

    def _ingestor(self, collection: str, *, create: bool = False, engine: RayEngine | None = None) -> Ingestor:
        self._state(collection, create=create)
        return Ingestor(
            settings=self.settings,
            vault=self.vault,
            open_index=lambda: self.index,
            catalog=self.catalog,
            janitor=self.janitor,
            readers=self.readers,
            collection=collection,
            embedder_for=engine.embedder_for(self.settings, self.embedder_for) if engine else self.embedder_for,
            cache_for=self._cache,
            parsers=engine.parsers(self.settings) if engine else self.parsers,
        )

    def _resolve(
        self, collection: str, ref: str, *, live_only: bool = True, principal: Principal | None = None
    ) -> DocumentRecord:
        """A document named by id or source, with its versions; one the principal may not see is not found, alike."""
        self._state(collection)
        candidates = [self.catalog.document(collection, ref)] if ref and len(ref) <= 64 else []
        for source in dict.fromkeys((ref, str(Path(ref).expanduser().absolute()), *_local_suffixes(ref))):
            found = self.catalog.documents_by_source(collection, [source]).get(source)
            if found is not None:
                candidates.append(self.catalog.document(collection, found.doc_id))
        for doc in candidates:
            if doc is not None and (doc.live is not None or not live_only) and permits(principal, doc):
                return doc
        raise NotFound(f"no document {ref!r} in collection {collection!r}; `cairn docs list` shows ids and sources")

    def close(self) -> None:
        with self._lock:
            for embedder in (self._embedder, *self._other_embedders.values()):
                if isinstance(embedder, SentenceTransformerEmbedder):
                    embedder.close()  # its worker; shared by this process's instances, restarted on use
            if self._parsers is not None:
                self._parsers.close()
                self._parsers = None
            if self._index is not None:
                self._index.close()
                self._index = None
            if self._catalog is not None:
                self._catalog.close()
                self._catalog = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (containers)
        return str(os.getuid())


def _document_access(
    tenant: str | None, allow: Sequence[str] | None, principal: Principal | None
) -> DocumentAccess | None:
    """The tenant and ACL to give documents; ``None`` when neither is asked for (keep what they have).

    Without *allow* the ACL is left as it is for known documents (``allowed=None``): giving a
    document a new version never widens who may see it.
    """
    if tenant is None and allow is None and principal is None:
        return None
    chosen = tenant or (principal.tenant if principal else "default")
    validate_name(chosen, "tenant")
    if principal is not None and chosen != principal.tenant:
        raise Forbidden(f"this key belongs to tenant {principal.tenant!r} and cannot place documents in {chosen!r}")
    if allow is None:
        return DocumentAccess(tenant=chosen, allowed=None)
    entries: list[str] = []
    for raw in allow:
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


def _local_suffixes(ref: str) -> list[str]:
    """For a local file's path, the identities an ingest of one of its folders gave it, longest first.

    ``/srv/docs/guide/a.md`` may be ``docs/guide/a.md`` (``cairn ingest /srv``), ``guide/a.md``
    (``cairn ingest /srv/docs``) or ``a.md``; the longest one the collection knows names it.
    """
    path = Path(ref).expanduser()
    if not path.is_file():
        return []
    parts = path.absolute().parts[1:]
    return ["/".join(parts[start:]) for start in range(len(parts))]
