"""The catalog's tables (SQLAlchemy Core). Changes to them are Alembic migrations in ``migrations/``.

- ``collections``: one row per collection: model, dimension, index generation, retention, and the
  maintenance lease a rebuild or reindex holds while it works.
- ``documents``: identity, source, tenant, ACL and the live pointer. Written per document, so a
  commit costs in proportion to what it changes.
- ``versions``: every version ever stored. ``state`` is ``pending`` while its rows may be in the
  index but are not yet live (readers hide them), then ``committed``.
- ``retired``: row sets replaced or taken down, still in the index until no reader can be using
  them; readers hide them.
- ``jobs``: durable work (uploads, syncs) claimed by workers under a lease.
- ``leases``: named leases (one scheduler, one maintenance run, one sync per source).
- ``sources``: registered sources (directory, S3 prefix, Git repository) synced into a collection,
  with their settings (never a secret: credentials are named environment variables) and last sync.
- ``source_objects``: what a source's last syncs saw of each object (ETag, size, modified time,
  version id, content hash) and which document it became, so an unchanged object costs one
  listing entry.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "collections",
    "documents",
    "jobs",
    "leases",
    "metadata",
    "retired",
    "source_objects",
    "sources",
    "versions",
]

metadata = MetaData()

collections = Table(
    "collections",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("embed_model", String(512), nullable=False),
    Column("dim", Integer, nullable=False),
    Column("generation", Integer, nullable=False, default=0),
    Column("retention_mode", String(16)),
    Column("retention_days", Integer),
    Column("created_at", Float, nullable=False),
    Column("maintenance_holder", String(200)),
    Column("maintenance_until", Float),
    Column("changed_at", Float, nullable=False, server_default="0"),
)

documents = Table(
    "documents",
    metadata,
    Column("collection", String(64), primary_key=True),
    Column("doc_id", String(64), primary_key=True),
    Column("source", Text, nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("allowed", JSON, nullable=False),
    Column("live", Integer),
    Column("updated_at", Float, nullable=False),
    Index("uq_documents_source", "collection", "source", unique=True),
    Index("ix_documents_tenant", "collection", "tenant"),
    Index("ix_documents_live", "collection", "live"),
)

versions = Table(
    "versions",
    metadata,
    Column("collection", String(64), primary_key=True),
    Column("doc_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mime", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("chunks_key", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("writer", String(200)),
    Index("ix_versions_state", "collection", "state"),
    Index("ix_versions_sha256", "sha256"),
)

retired = Table(
    "retired",
    metadata,
    Column("collection", String(64), primary_key=True),
    Column("doc_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("generation", Integer, nullable=False),
    Column("retired_at", Float, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("collection", String(64), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("state", String(16), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("progress", JSON),
    Column("report", JSON),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_holder", String(200)),
    Column("lease_until", Float),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("finished_at", Float),
    Index("ix_jobs_state", "state", "created_at"),
    Index("ix_jobs_tenant", "tenant", "created_at"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),
)

sources = Table(
    "sources",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("uri", Text, nullable=False),
    Column("collection", String(64), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("allowed", JSON, nullable=False),
    Column("every_s", Float),
    Column("settings", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("last_sync", JSON),
    Column("next_sync_at", Float),
    Index("ix_sources_collection", "collection"),
)

source_objects = Table(
    "source_objects",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("key", String(1024), primary_key=True),
    Column("doc_id", String(64), nullable=False),
    Column("etag", String(200)),
    Column("size", BigInteger, nullable=False),
    Column("modified", Float),
    Column("version_id", String(200)),
    Column("sha256", String(64), nullable=False),
    Column("signature", String(64)),
    Column("synced_at", Float, nullable=False),
    Index("ix_source_objects_doc", "doc_id"),
)
