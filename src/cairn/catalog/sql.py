"""The catalog on SQL: SQLite in ``CAIRN_HOME`` for the embedded default, PostgreSQL for many machines.

Every change is one transaction whose cost is in proportion to the documents it touches, and every
read sees what any process committed before it. Rules kept here, not by the callers:

- A new version is *reserved* (numbered, ``pending``) before its rows reach the index; readers hide
  pending row sets, so a crash leaves nothing visible twice.
- *Publishing* makes reserved versions live in one transaction, document by document under a row
  lock: a version whose bytes are already live is dropped (``duplicate``); one older than a version
  another writer published is kept in the history but never live (``superseded``). So two writers
  of one document end at exactly one live version.
- Replaced and taken-down row sets are *retired*: hidden from readers until the janitor deletes
  their rows, once no reader can still be using them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from cairn.catalog import schema as t
from cairn.catalog.engine import catalog_engine, migrate, retried, write_transaction
from cairn.catalog.records import (
    CollectionState,
    DocumentRecord,
    Publication,
    Retention,
    RowSet,
    VersionDraft,
    VersionRecord,
)
from cairn.catalog.sourcing import SourceCatalog
from cairn.errors import CatalogError, NotFound

__all__ = ["CatalogSnapshot", "PendingVersion", "SqlCatalog"]

_PAGE = 1000


class PendingVersion:
    """A reserved, not yet published version: its row set, its writer and its age."""

    def __init__(self, rowset: RowSet, writer: str | None, created_at: float, chunks_key: str) -> None:
        self.rowset = rowset
        self.writer = writer
        self.created_at = created_at
        self.chunks_key = chunks_key


class SqlCatalog(SourceCatalog):
    """The `Catalog` on a SQLAlchemy engine (SQLite or PostgreSQL), migrated to the newest schema on open."""

    def __init__(self, url: str, *, migrate_on_open: bool = True) -> None:
        self.url = url
        self.engine: Engine = catalog_engine(url)
        if migrate_on_open:
            migrate(self.engine)

    def describe(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    # -- transactions --------------------------------------------------------------------------
    def _read(self) -> Any:
        return _Reading(self.engine)

    def _write(self) -> Any:
        return write_transaction(self.engine)

    def ping(self) -> None:
        """Raise `CatalogError` unless the database answers a query."""
        with self._read() as connection:
            connection.execute(select(1)).scalar_one()

    @contextmanager
    def snapshot(self, collection: str) -> Iterator[CatalogSnapshot]:
        """One collection as of one instant: its state, hidden rows and documents, read in one transaction.

        A search reads the hidden row sets and then, after the engine answers, the documents of its
        hits from the same snapshot, so it sees exactly one version of each document.
        """
        with self._read() as connection:
            if connection.dialect.name == "postgresql":
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            row = connection.execute(select(t.collections).where(t.collections.c.name == collection)).mappings().first()
            if row is None:
                raise NotFound(
                    f"no collection {collection!r}; ingest documents into it first "
                    f"(cairn ingest PATH --collection {collection})"
                )
            yield CatalogSnapshot(connection, _collection_state(row))

    # -- collections ---------------------------------------------------------------------------
    def collection(self, name: str) -> CollectionState | None:
        with self._read() as connection:
            row = connection.execute(select(t.collections).where(t.collections.c.name == name)).mappings().first()
        return _collection_state(row) if row is not None else None

    @retried
    def ensure_collection(self, name: str, *, embed_model: str, dim: int) -> CollectionState:
        """The collection, created with *embed_model* and *dim* if it does not exist yet."""
        with self._write() as connection:
            _insert_ignore(
                connection,
                t.collections,
                {"name": name, "embed_model": embed_model, "dim": dim, "generation": 0, "created_at": time.time()},
            )
            row = connection.execute(select(t.collections).where(t.collections.c.name == name)).mappings().one()
        return _collection_state(row)

    def collection_names(self) -> list[str]:
        with self._read() as connection:
            return list(connection.execute(select(t.collections.c.name).order_by(t.collections.c.name)).scalars())

    def drop_collection(self, name: str) -> None:
        with self._write() as connection:
            for table in (t.retired, t.versions, t.documents):
                connection.execute(delete(table).where(table.c.collection == name))
            connection.execute(delete(t.collections).where(t.collections.c.name == name))

    def set_retention(self, name: str, retention: Retention | None) -> None:
        with self._write() as connection:
            connection.execute(
                update(t.collections)
                .where(t.collections.c.name == name)
                .values(
                    retention_mode=retention.mode if retention else None,
                    retention_days=retention.days if retention else None,
                )
            )

    @retried
    def switch_generation(
        self, name: str, *, generation: int, embed_model: str, dim: int, chunk_keys: dict[RowSet, str]
    ) -> None:
        """Move readers to a re-indexed generation: model, dimension and the versions' new chunk files at once."""
        with self._write() as connection:
            connection.execute(
                update(t.collections)
                .where(t.collections.c.name == name)
                .values(generation=generation, embed_model=embed_model, dim=dim)
            )
            for rowset, key in chunk_keys.items():
                connection.execute(
                    update(t.versions).where(_version_is(name, rowset.doc_id, rowset.version)).values(chunks_key=key)
                )
            connection.execute(delete(t.retired).where(t.retired.c.collection == name))

    @retried
    def hold_maintenance(self, name: str, holder: str, *, ttl_s: float) -> bool:
        """Take (or renew) the collection's maintenance lease; False while another holder has it."""
        now = time.time()
        with self._write() as connection:
            row = (
                connection.execute(
                    select(t.collections.c.maintenance_holder, t.collections.c.maintenance_until)
                    .where(t.collections.c.name == name)
                    .with_for_update()
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound(f"no collection {name!r}")
            if row["maintenance_holder"] not in (None, holder) and (row["maintenance_until"] or 0) > now:
                return False
            connection.execute(
                update(t.collections)
                .where(t.collections.c.name == name)
                .values(maintenance_holder=holder, maintenance_until=now + ttl_s)
            )
            return True

    def maintenance_holder(self, name: str) -> str | None:
        """Who holds the collection's maintenance lease now (``None`` when nobody, or it expired)."""
        with self._read() as connection:
            row = (
                connection.execute(
                    select(t.collections.c.maintenance_holder, t.collections.c.maintenance_until).where(
                        t.collections.c.name == name
                    )
                )
                .mappings()
                .first()
            )
        if row is None or row["maintenance_holder"] is None or (row["maintenance_until"] or 0) <= time.time():
            return None
        return str(row["maintenance_holder"])

    def release_maintenance(self, name: str, holder: str) -> None:
        with self._write() as connection:
            connection.execute(
                update(t.collections)
                .where(t.collections.c.name == name, t.collections.c.maintenance_holder == holder)
                .values(maintenance_holder=None, maintenance_until=None)
            )

    # -- documents -----------------------------------------------------------------------------
    def document(self, collection: str, doc_id: str) -> DocumentRecord | None:
        """A document with every version kept (``None`` when the collection has no such document)."""
        with self._read() as connection:
            row = (
                connection.execute(
                    select(t.documents).where(t.documents.c.collection == collection, t.documents.c.doc_id == doc_id)
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            kept = connection.execute(
                select(t.versions)
                .where(
                    t.versions.c.collection == collection,
                    t.versions.c.doc_id == doc_id,
                    t.versions.c.state == "committed",
                )
                .order_by(t.versions.c.version)
            ).mappings()
            return _document(row, [_version(v) for v in kept])

    def documents(self, collection: str, doc_ids: Sequence[str]) -> dict[str, DocumentRecord]:
        """The named documents' access and live pointer, without their versions (one query per 1000)."""
        with self._read() as connection:
            return _documents(connection, collection, doc_ids)

    def documents_by_source(self, collection: str, sources: Sequence[str]) -> dict[str, DocumentRecord]:
        """Documents named by source, each with its live version only."""
        found: dict[str, DocumentRecord] = {}
        unique = sorted(set(sources))
        for start in range(0, len(unique), _PAGE):
            condition = t.documents.c.source.in_(unique[start : start + _PAGE])
            found.update({doc.source: doc for doc in self._with_live(collection, condition, live_only=False)})
        return found

    def live_documents(
        self, collection: str, *, after: str | None = None, limit: int | None = None
    ) -> list[DocumentRecord]:
        """Live documents in doc id order, each with its live version: a page of them with *after*/*limit*."""
        condition: Any = t.documents.c.live.is_not(None)
        if after is not None:
            condition = condition & (t.documents.c.doc_id > after)
        return self._with_live(collection, condition, limit=limit)

    def iter_live_documents(
        self, collection: str, page: int = _PAGE, *, all_versions: bool = False
    ) -> Iterator[DocumentRecord]:
        """Every live document, read a page at a time (memory bounded whatever the collection's size).

        Each comes with its live version, or with every version kept when *all_versions*.
        """
        after: str | None = None
        while True:
            batch = self.live_documents(collection, after=after, limit=page)
            if all_versions and batch:
                kept = self._committed_versions(collection, [doc.doc_id for doc in batch])
                batch = [doc.model_copy(update={"versions": kept.get(doc.doc_id, [])}) for doc in batch]
            yield from batch
            if len(batch) < page:
                return
            after = batch[-1].doc_id

    def _committed_versions(self, collection: str, doc_ids: Sequence[str]) -> dict[str, list[VersionRecord]]:
        found: dict[str, list[VersionRecord]] = {}
        with self._read() as connection:
            rows = connection.execute(
                select(t.versions)
                .where(
                    t.versions.c.collection == collection,
                    t.versions.c.doc_id.in_(list(doc_ids)),
                    t.versions.c.state == "committed",
                )
                .order_by(t.versions.c.doc_id, t.versions.c.version)
            ).mappings()
            for row in rows:
                found.setdefault(row["doc_id"], []).append(_version(row))
        return found

    def _with_live(
        self, collection: str, condition: Any, *, live_only: bool = True, limit: int | None = None
    ) -> list[DocumentRecord]:
        joined = t.documents.outerjoin(
            t.versions,
            (t.versions.c.collection == t.documents.c.collection)
            & (t.versions.c.doc_id == t.documents.c.doc_id)
            & (t.versions.c.version == t.documents.c.live),
        )
        query = (
            select(
                t.documents, *[c.label(f"v_{c.name}") for c in t.versions.c if c.name not in ("collection", "doc_id")]
            )
            .select_from(joined)
            .where(t.documents.c.collection == collection, condition)
            .order_by(t.documents.c.doc_id)
        )
        if limit is not None:
            query = query.limit(limit)
        with self._read() as connection:
            rows = connection.execute(query).mappings().all()
        out: list[DocumentRecord] = []
        for row in rows:
            live = row["v_version"] is not None
            if live_only and not live:
                continue
            kept = [_version({k[2:]: row[k] for k in row if k.startswith("v_")})] if live else []
            out.append(_document(row, kept))
        return out

    def live_counts(self, collection: str) -> tuple[int, int]:
        """(live documents, their chunks)."""
        joined = t.documents.join(
            t.versions,
            (t.versions.c.collection == t.documents.c.collection)
            & (t.versions.c.doc_id == t.documents.c.doc_id)
            & (t.versions.c.version == t.documents.c.live),
        )
        with self._read() as connection:
            row = connection.execute(
                select(func.count(), func.coalesce(func.sum(t.versions.c.chunks), 0))
                .select_from(joined)
                .where(t.documents.c.collection == collection)
            ).one()
        return int(row[0]), int(row[1])

    def tenant_standing(self, collection: str, tenant: str) -> str:
        """``member`` when the collection holds a document of *tenant*, ``empty`` when it holds none at all,
        else ``foreign`` (two indexed lookups, whatever the collection's size)."""
        with self._read() as connection:
            mine = connection.execute(
                select(t.documents.c.doc_id)
                .where(t.documents.c.collection == collection, t.documents.c.tenant == tenant)
                .limit(1)
            ).first()
            if mine is not None:
                return "member"
            anyone = connection.execute(
                select(t.documents.c.doc_id).where(t.documents.c.collection == collection).limit(1)
            ).first()
        return "empty" if anyone is None else "foreign"

    def tenants(self, collection: str) -> set[str]:
        """The tenants owning any document (live or removed) of the collection."""
        with self._read() as connection:
            return set(
                connection.execute(
                    select(t.documents.c.tenant).where(t.documents.c.collection == collection).distinct()
                ).scalars()
            )

    # -- writing versions ----------------------------------------------------------------------
    @retried
    def reserve(
        self,
        collection: str,
        drafts: Sequence[VersionDraft],
        *,
        writer: str,
        chunks_key: Callable[[str, int], str],
    ) -> list[tuple[DocumentRecord, VersionRecord]]:
        """Number each draft's version and record it ``pending`` (hidden), creating new documents.

        Returns each document (access as it will be indexed) with its reserved version. A document is
        found by its source: a draft for a source another writer has just created gets that document's id.
        """
        now = time.time()
        reserved: dict[int, tuple[DocumentRecord, VersionRecord]] = {}
        with self._write() as connection:
            # Create missing documents in source order, then lock every document in doc id order, the order
            # every other write transaction locks them in, so two writers never wait for each other in a circle.
            for draft in sorted(drafts, key=lambda d: d.source):
                _insert_ignore(
                    connection,
                    t.documents,
                    {
                        "collection": collection,
                        "doc_id": draft.doc_id,
                        "source": draft.source,
                        "tenant": draft.tenant or "default",
                        "allowed": draft.allowed if draft.allowed is not None else ["*"],
                        "live": None,
                        "updated_at": now,
                    },
                )
            # The source is unique in a collection: a writer that lost the race to create the document
            # gets the winner's id, so both write versions of one document.
            rows = _locked_sources(connection, collection, [draft.source for draft in drafts])
            for position, draft in sorted(enumerate(drafts), key=lambda item: rows[item[1].source]["doc_id"]):
                row = rows[draft.source]
                doc_id = row["doc_id"]
                latest = connection.execute(
                    select(func.max(t.versions.c.version)).where(
                        t.versions.c.collection == collection, t.versions.c.doc_id == doc_id
                    )
                ).scalar_one()
                retired_latest = connection.execute(
                    select(func.max(t.retired.c.version)).where(
                        t.retired.c.collection == collection, t.retired.c.doc_id == doc_id
                    )
                ).scalar_one()
                number = max(latest or 0, retired_latest or 0) + 1
                version = VersionRecord(
                    version=number,
                    sha256=draft.sha256,
                    size=draft.size,
                    mime=draft.mime,
                    created_at=now,
                    chunks=draft.chunks,
                    chunks_key=chunks_key(doc_id, number),
                )
                connection.execute(
                    insert(t.versions).values(
                        collection=collection,
                        doc_id=doc_id,
                        state="pending",
                        writer=writer,
                        **version.model_dump(),
                    )
                )
                document = _document(row, [])
                document.tenant = draft.tenant or document.tenant
                if draft.allowed is not None:
                    document.allowed = list(draft.allowed)
                reserved[position] = (document, version)
        return [reserved[position] for position in range(len(drafts))]

    @retried
    def publish(
        self, collection: str, versions: Sequence[tuple[VersionDraft, int]], *, generation: int
    ) -> list[Publication]:
        """Make reserved versions live in one transaction (see the module's rules); return what each became."""
        now = time.time()
        outcomes: list[Publication] = []
        with self._write() as connection:
            for draft, number in sorted(versions, key=lambda item: item[0].doc_id):
                row = _locked_document(connection, collection, draft.doc_id)
                live = row["live"]
                live_sha = (
                    connection.execute(
                        select(t.versions.c.sha256).where(_version_is(collection, draft.doc_id, live))
                    ).scalar_one_or_none()
                    if live is not None
                    else None
                )
                rowset = RowSet(doc_id=draft.doc_id, version=number)
                if live_sha == draft.sha256 and live != number:
                    connection.execute(delete(t.versions).where(_version_is(collection, draft.doc_id, number)))
                    _retire(connection, collection, [rowset], generation, now)
                    outcomes.append(Publication(doc_id=draft.doc_id, version=number, outcome="duplicate"))
                    continue
                connection.execute(
                    update(t.versions)
                    .where(_version_is(collection, draft.doc_id, number))
                    .values(state="committed", writer=None)
                )
                if live is not None and live > number:
                    _retire(connection, collection, [rowset], generation, now)
                    outcomes.append(Publication(doc_id=draft.doc_id, version=number, outcome="superseded"))
                    continue
                if live is not None:
                    _retire(connection, collection, [RowSet(doc_id=draft.doc_id, version=live)], generation, now)
                values: dict[str, Any] = {"live": number, "source": draft.source, "updated_at": now}
                if draft.tenant is not None:
                    values["tenant"] = draft.tenant
                if draft.allowed is not None:
                    values["allowed"] = list(draft.allowed)
                connection.execute(update(t.documents).where(_document_is(collection, draft.doc_id)).values(**values))
                outcomes.append(Publication(doc_id=draft.doc_id, version=number, outcome="live"))
            _touch(connection, collection, now)
        return outcomes

    @retried
    def take_down(self, collection: str, doc_ids: Sequence[str], *, generation: int) -> list[DocumentRecord]:
        """Make live documents not live (their versions stay); return them as they were."""
        now = time.time()
        taken: list[DocumentRecord] = []
        with self._write() as connection:
            for doc_id in sorted(set(doc_ids)):
                row = _locked_document(connection, collection, doc_id, missing_ok=True)
                if row is None or row["live"] is None:
                    continue
                _retire(connection, collection, [RowSet(doc_id=doc_id, version=row["live"])], generation, now)
                connection.execute(
                    update(t.documents).where(_document_is(collection, doc_id)).values(live=None, updated_at=now)
                )
                taken.append(_document(row, []))
            _touch(connection, collection, now)
        return taken

    @retried
    def set_access(
        self, collection: str, doc_ids: Sequence[str], *, tenant: str, allowed: Sequence[str] | None
    ) -> list[DocumentRecord]:
        """Give documents a tenant and ACL (``allowed=None`` keeps each ACL); return those that changed."""
        now = time.time()
        changed: list[DocumentRecord] = []
        with self._write() as connection:
            for doc_id in sorted(set(doc_ids)):
                row = _locked_document(connection, collection, doc_id, missing_ok=True)
                if row is None:
                    continue
                new_allowed = list(allowed) if allowed is not None else list(row["allowed"])
                if (row["tenant"], list(row["allowed"])) == (tenant, new_allowed):
                    continue
                connection.execute(
                    update(t.documents)
                    .where(_document_is(collection, doc_id))
                    .values(tenant=tenant, allowed=new_allowed, updated_at=now)
                )
                document = _document(row, [])
                document.tenant, document.allowed = tenant, new_allowed
                changed.append(document)
            _touch(connection, collection, now)
        return changed

    def forget_version(self, collection: str, doc_id: str, version: int) -> None:
        """Drop a purged version's record (its bytes are gone from the vault)."""
        with self._write() as connection:
            connection.execute(delete(t.versions).where(_version_is(collection, doc_id, version)))

    def forget_document(self, collection: str, doc_id: str) -> None:
        with self._write() as connection:
            connection.execute(delete(t.versions).where(_document_is(collection, doc_id, t.versions)))
            connection.execute(delete(t.documents).where(_document_is(collection, doc_id)))

    def blob_references(self, digests: Sequence[str]) -> dict[str, int]:
        """How many versions, in any collection, keep each of the given blobs."""
        with self._read() as connection:
            rows = connection.execute(
                select(t.versions.c.sha256, func.count())
                .where(t.versions.c.sha256.in_(sorted(set(digests))))
                .group_by(t.versions.c.sha256)
            ).all()
        return {str(digest): int(count) for digest, count in rows}

    def version_files(self, collection: str) -> dict[RowSet, str]:
        """Every version of the collection the catalog keeps (live, earlier, pending), with its chunk file's key."""
        with self._read() as connection:
            rows = connection.execute(
                select(t.versions.c.doc_id, t.versions.c.version, t.versions.c.chunks_key).where(
                    t.versions.c.collection == collection
                )
            ).all()
        return {RowSet(doc_id=str(doc_id), version=int(version)): str(key) for doc_id, version, key in rows}

    @retried
    def load_collection(
        self, state: CollectionState, documents: Sequence[DocumentRecord], *, hidden: Sequence[RowSet] = ()
    ) -> bool:
        """Record a whole collection at once (importing a manifest, or rebuilding from the vault's records).

        Every version is committed; *hidden* row sets are retired, so the janitor deletes their rows.
        False (and nothing changed) when the catalog has the collection already.
        """
        now = time.time()
        with self._write() as connection:
            exists = connection.execute(select(t.collections.c.name).where(t.collections.c.name == state.name)).first()
            if exists is not None:
                return False
            _insert_ignore(
                connection,
                t.collections,
                {
                    "name": state.name,
                    "embed_model": state.embed_model,
                    "dim": state.dim,
                    "generation": state.generation,
                    "retention_mode": state.retention.mode if state.retention else None,
                    "retention_days": state.retention.days if state.retention else None,
                    "created_at": state.created_at,
                },
            )
            doc_rows = [
                {
                    "collection": state.name,
                    "doc_id": d.doc_id,
                    "source": d.source,
                    "tenant": d.tenant,
                    "allowed": list(d.allowed),
                    "live": d.live,
                    "updated_at": now,
                }
                for d in documents
            ]
            version_rows = [
                {"collection": state.name, "doc_id": d.doc_id, "state": "committed", "writer": None, **v.model_dump()}
                for d in documents
                for v in d.versions
            ]
            for start in range(0, len(doc_rows), _PAGE):
                connection.execute(insert(t.documents), doc_rows[start : start + _PAGE])
            for start in range(0, len(version_rows), _PAGE):
                connection.execute(insert(t.versions), version_rows[start : start + _PAGE])
            _retire(connection, state.name, hidden, state.generation, 0.0)
        return True

    # -- rows readers must not see -------------------------------------------------------------
    def hidden_rows(self, collection: str) -> list[RowSet]:
        """Row sets in the index that readers must not see now: pending and retired ones."""
        with self._read() as connection:
            return _hidden_rows(connection, collection)

    def pending_versions(self, collection: str) -> list[PendingVersion]:
        with self._read() as connection:
            rows = connection.execute(
                select(t.versions).where(t.versions.c.collection == collection, t.versions.c.state == "pending")
            ).mappings()
            return [
                PendingVersion(
                    RowSet(doc_id=r["doc_id"], version=r["version"]), r["writer"], r["created_at"], r["chunks_key"]
                )
                for r in rows
            ]

    @retried
    def abandon(self, collection: str, rowsets: Sequence[RowSet], *, generation: int) -> None:
        """Give up pending versions whose writer is gone: forget them and retire their rows (now)."""
        with self._write() as connection:
            for rowset in rowsets:
                gone = connection.execute(
                    delete(t.versions).where(
                        _version_is(collection, rowset.doc_id, rowset.version), t.versions.c.state == "pending"
                    )
                ).rowcount
                if gone:
                    _retire(connection, collection, [rowset], generation, 0.0)

    def retired_rows(self, collection: str, *, before: float) -> list[tuple[RowSet, int]]:
        """Retired row sets (with their index generation) retired before *before*."""
        with self._read() as connection:
            rows = connection.execute(
                select(t.retired.c.doc_id, t.retired.c.version, t.retired.c.generation).where(
                    t.retired.c.collection == collection, t.retired.c.retired_at <= before
                )
            ).all()
        return [(RowSet(doc_id=d, version=v), int(g)) for d, v, g in rows]

    @retried
    def forget_retired(self, collection: str, rowsets: Sequence[RowSet]) -> None:
        """The retired rows are deleted from the index: stop hiding them (one primary-key delete each)."""
        if not rowsets:
            return
        statement = delete(t.retired).where(
            t.retired.c.collection == bindparam("b_collection"),
            t.retired.c.doc_id == bindparam("b_doc_id"),
            t.retired.c.version == bindparam("b_version"),
        )
        with self._write() as connection:
            connection.execute(
                statement,
                [{"b_collection": collection, "b_doc_id": r.doc_id, "b_version": r.version} for r in rowsets],
            )


class CatalogSnapshot:
    """Reads of one collection inside one read transaction (see `SqlCatalog.snapshot`)."""

    def __init__(self, connection: Connection, state: CollectionState) -> None:
        self.connection = connection
        self.state = state

    def hidden_rows(self) -> list[RowSet]:
        return _hidden_rows(self.connection, self.state.name)

    def documents(self, doc_ids: Sequence[str]) -> dict[str, DocumentRecord]:
        return _documents(self.connection, self.state.name, doc_ids)


class _Reading:
    """A read transaction; database failures become `CatalogError`s that say where and what to do."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connection: Connection | None = None

    def __enter__(self) -> Connection:
        try:
            self.connection = self.engine.connect()
        except DBAPIError as exc:
            raise CatalogError(_unreachable(self.engine, exc)) from exc
        return self.connection

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        assert self.connection is not None
        self.connection.close()
        if isinstance(exc, DBAPIError):
            raise CatalogError(_unreachable(self.engine, exc)) from exc


def _unreachable(engine: Engine, exc: DBAPIError) -> str:
    where = engine.url.render_as_string(hide_password=True)
    first = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
    return f"the catalog at {where} failed: {first}; check that the database is running and reachable, then retry"


def _documents(connection: Connection, collection: str, doc_ids: Sequence[str]) -> dict[str, DocumentRecord]:
    found: dict[str, DocumentRecord] = {}
    unique = sorted(set(doc_ids))
    for start in range(0, len(unique), _PAGE):
        rows = connection.execute(
            select(t.documents).where(
                t.documents.c.collection == collection,
                t.documents.c.doc_id.in_(unique[start : start + _PAGE]),
            )
        ).mappings()
        found.update({row["doc_id"]: _document(row, []) for row in rows})
    return found


def _hidden_rows(connection: Connection, collection: str) -> list[RowSet]:
    pending = select(t.versions.c.doc_id, t.versions.c.version).where(
        t.versions.c.collection == collection, t.versions.c.state == "pending"
    )
    gone = select(t.retired.c.doc_id, t.retired.c.version).where(t.retired.c.collection == collection)
    return [RowSet(doc_id=d, version=v) for d, v in connection.execute(pending.union_all(gone)).all()]


def _insert_ignore(connection: Connection, table: Any, values: dict[str, Any]) -> None:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(dialect.insert(table).values(**values).on_conflict_do_nothing())


def _document_is(collection: str, doc_id: str, table: Any = t.documents) -> Any:
    return (table.c.collection == collection) & (table.c.doc_id == doc_id)


def _version_is(collection: str, doc_id: str, version: int) -> Any:
    return _document_is(collection, doc_id, t.versions) & (t.versions.c.version == version)


def _locked_document(connection: Connection, collection: str, doc_id: str, *, missing_ok: bool = False) -> Any:
    row = (
        connection.execute(select(t.documents).where(_document_is(collection, doc_id)).with_for_update())
        .mappings()
        .first()
    )
    if row is None and not missing_ok:
        raise NotFound(f"no document {doc_id!r} in collection {collection!r}")
    return row


def _touch(connection: Connection, collection: str, now: float) -> None:
    """Record that readers must see the collection's latest rows (a server reads strongly for a while)."""
    connection.execute(update(t.collections).where(t.collections.c.name == collection).values(changed_at=now))


def _locked_sources(connection: Connection, collection: str, sources: Sequence[str]) -> dict[str, Any]:
    """The documents of *sources*, each locked for this transaction, locked in doc id order."""
    found: dict[str, Any] = {}
    unique = sorted(set(sources))
    for start in range(0, len(unique), _PAGE):
        rows = connection.execute(
            select(t.documents)
            .where(t.documents.c.collection == collection, t.documents.c.source.in_(unique[start : start + _PAGE]))
            .order_by(t.documents.c.doc_id)
            .with_for_update()
        ).mappings()
        found.update({row["source"]: row for row in rows})
    return found


def _retire(connection: Connection, collection: str, rowsets: Sequence[RowSet], generation: int, at: float) -> None:
    for rowset in rowsets:
        _insert_ignore(
            connection,
            t.retired,
            {
                "collection": collection,
                "doc_id": rowset.doc_id,
                "version": rowset.version,
                "generation": generation,
                "retired_at": at,
            },
        )


def _collection_state(row: Any) -> CollectionState:
    retention = (
        Retention(mode=row["retention_mode"], days=row["retention_days"]) if row["retention_mode"] is not None else None
    )
    return CollectionState(
        name=row["name"],
        embed_model=row["embed_model"],
        dim=row["dim"],
        generation=row["generation"],
        retention=retention,
        created_at=row["created_at"],
        changed_at=row["changed_at"],
    )


def _document(row: Any, kept: list[VersionRecord]) -> DocumentRecord:
    return DocumentRecord(
        doc_id=row["doc_id"],
        source=row["source"],
        tenant=row["tenant"],
        allowed=list(row["allowed"]),
        live=row["live"],
        versions=kept,
    )


def _version(row: Any) -> VersionRecord:
    return VersionRecord(
        version=row["version"],
        sha256=row["sha256"],
        size=row["size"],
        mime=row["mime"],
        created_at=row["created_at"],
        chunks=row["chunks"],
        chunks_key=row["chunks_key"],
    )
