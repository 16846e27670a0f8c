"""The catalog's part for sources: registered sources, what their syncs saw, source renames, named leases.

Rules kept here, not by the callers:

- A source's name is unique; removing it forgets what its syncs saw (its documents stay, they are
  taken down by the caller first when asked).
- ``source_objects`` rows are written in the same breath as the document they describe becomes
  live (the sync records them right after publishing): a crash between the two costs one fetch and
  one content-hash comparison on the next sync, never a second version (the content hash decides).
- A named lease (``leases``) is held by one holder until it expires or is released: one sync of a
  source at a time, one scheduler per deployment.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cairn.catalog import schema as t
from cairn.catalog.engine import retried, write_transaction
from cairn.catalog.records import SourceObject, SourceRecord
from cairn.errors import InvalidRequest, NotFound

__all__ = ["SourceCatalog"]

_PAGE = 1000


class SourceCatalog:
    """Sources, their objects and named leases on a SQLAlchemy engine (mixed into `SqlCatalog`)."""

    engine: Engine

    # -- sources -----------------------------------------------------------------------------------
    @retried
    def add_source(self, source: SourceRecord) -> SourceRecord:
        """Register *source*; `InvalidRequest` when a source of that name exists."""
        with write_transaction(self.engine) as connection:
            exists = connection.execute(select(t.sources.c.name).where(t.sources.c.name == source.name)).first()
            if exists is not None:
                raise InvalidRequest(
                    f"a source named {source.name!r} exists; choose another name or remove it first "
                    f"(cairn sources rm {source.name})"
                )
            connection.execute(insert(t.sources).values(**source.model_dump()))
        return source

    @retried
    def update_source(self, source: SourceRecord) -> SourceRecord:
        """Store a source's new ACL, schedule and settings (its kind, URI, collection and tenant stay)."""
        with write_transaction(self.engine) as connection:
            changed = connection.execute(
                update(t.sources)
                .where(t.sources.c.name == source.name)
                .values(
                    allowed=source.allowed,
                    every_s=source.every_s,
                    settings=source.settings,
                    next_sync_at=source.next_sync_at,
                    updated_at=time.time(),
                )
            ).rowcount
        if not changed:
            raise NotFound(f"no source {source.name!r}; list them with: cairn sources list")
        return source

    def source(self, name: str) -> SourceRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(t.sources).where(t.sources.c.name == name)).mappings().first()
        return SourceRecord.model_validate(dict(row)) if row is not None else None

    def source_list(self, collection: str | None = None) -> list[SourceRecord]:
        query = select(t.sources).order_by(t.sources.c.name)
        if collection is not None:
            query = query.where(t.sources.c.collection == collection)
        with self.engine.connect() as connection:
            return [SourceRecord.model_validate(dict(row)) for row in connection.execute(query).mappings()]

    @retried
    def remove_source(self, name: str) -> None:
        """Forget a source and what its syncs saw; `NotFound` when there is none of that name."""
        with write_transaction(self.engine) as connection:
            gone = connection.execute(delete(t.sources).where(t.sources.c.name == name)).rowcount
            connection.execute(delete(t.source_objects).where(t.source_objects.c.source == name))
        if not gone:
            raise NotFound(f"no source {name!r}; list them with: cairn sources list")

    @retried
    def record_sync(self, name: str, report: Mapping[str, object], *, next_sync_at: float | None) -> None:
        """Keep a sync's report as the source's last, and when the scheduler should run it next."""
        with write_transaction(self.engine) as connection:
            connection.execute(
                update(t.sources)
                .where(t.sources.c.name == name)
                .values(last_sync=dict(report), next_sync_at=next_sync_at, updated_at=time.time())
            )

    def due_sources(self, now: float) -> list[SourceRecord]:
        """Scheduled sources whose next sync is due at *now*."""
        query = select(t.sources).where(
            t.sources.c.every_s.is_not(None),
            (t.sources.c.next_sync_at.is_(None)) | (t.sources.c.next_sync_at <= now),
        )
        with self.engine.connect() as connection:
            return [SourceRecord.model_validate(dict(row)) for row in connection.execute(query).mappings()]

    # -- what syncs saw ------------------------------------------------------------------------------
    def source_objects(self, name: str) -> dict[str, SourceObject]:
        """Every object the source's syncs recorded, by key."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(t.source_objects).where(t.source_objects.c.source == name)).mappings()
            return {row["key"]: _object(row) for row in rows}

    @retried
    def save_source_objects(self, name: str, objects: Sequence[SourceObject]) -> None:
        """Record (or replace) what a sync saw of *objects*."""
        if not objects:
            return
        with write_transaction(self.engine) as connection:
            keys = [o.key for o in objects]
            for start in range(0, len(keys), _PAGE):
                connection.execute(
                    delete(t.source_objects).where(
                        t.source_objects.c.source == name, t.source_objects.c.key.in_(keys[start : start + _PAGE])
                    )
                )
            connection.execute(insert(t.source_objects), [{"source": name, **o.model_dump()} for o in objects])

    @retried
    def forget_source_objects(self, name: str, keys: Sequence[str]) -> None:
        with write_transaction(self.engine) as connection:
            for start in range(0, len(keys), _PAGE):
                connection.execute(
                    delete(t.source_objects).where(
                        t.source_objects.c.source == name, t.source_objects.c.key.in_(list(keys[start : start + _PAGE]))
                    )
                )

    def sourced_documents(self, collection: str) -> set[str]:
        """The ids of documents of *collection* that a registered source owns (a plain ingest leaves them be)."""
        query = (
            select(t.source_objects.c.doc_id)
            .join(t.sources, t.sources.c.name == t.source_objects.c.source)
            .where(t.sources.c.collection == collection)
        )
        with self.engine.connect() as connection:
            return set(connection.execute(query).scalars())

    @retried
    def rename_sources(self, collection: str, renames: Mapping[str, str]) -> list[str]:
        """Give documents new sources (``old → new``) unless a document already has the new one; return their ids."""
        renamed: list[str] = []
        with write_transaction(self.engine) as connection:
            for old, new in sorted(renames.items()):
                taken = connection.execute(
                    select(t.documents.c.doc_id).where(
                        t.documents.c.collection == collection, t.documents.c.source == new
                    )
                ).first()
                row = connection.execute(
                    select(t.documents.c.doc_id)
                    .where(t.documents.c.collection == collection, t.documents.c.source == old)
                    .with_for_update()
                ).first()
                if taken is not None or row is None:
                    continue
                connection.execute(
                    update(t.documents)
                    .where(t.documents.c.collection == collection, t.documents.c.doc_id == row.doc_id)
                    .values(source=new, updated_at=time.time())
                )
                renamed.append(str(row.doc_id))
        return renamed

    # -- named leases --------------------------------------------------------------------------------
    @retried
    def hold_lease(self, name: str, holder: str, *, ttl_s: float, take_from: str | None = None) -> bool:
        """Take (or renew) the lease *name* for *ttl_s*; False while another holder has it.

        With *take_from*, the lease is taken from that holder even before it expires (the caller knows
        it is gone: a process of this host that has ended).
        """
        now = time.time()
        with write_transaction(self.engine) as connection:
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            connection.execute(
                dialect.insert(t.leases)
                .values(name=name, holder=holder, expires_at=now + ttl_s)
                .on_conflict_do_nothing()
            )
            row = connection.execute(select(t.leases).where(t.leases.c.name == name).with_for_update()).mappings().one()
            if row["holder"] not in (holder, take_from) and row["expires_at"] > now:
                return False
            connection.execute(
                update(t.leases).where(t.leases.c.name == name).values(holder=holder, expires_at=now + ttl_s)
            )
            return True

    def lease_holder(self, name: str) -> str | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(t.leases).where(t.leases.c.name == name)).mappings().first()
        return str(row["holder"]) if row is not None and row["expires_at"] > time.time() else None

    @retried
    def release_lease(self, name: str, holder: str) -> None:
        with write_transaction(self.engine) as connection:
            connection.execute(delete(t.leases).where(t.leases.c.name == name, t.leases.c.holder == holder))


def _object(row: Any) -> SourceObject:
    return SourceObject.model_validate({k: v for k, v in dict(row).items() if k != "source"})
