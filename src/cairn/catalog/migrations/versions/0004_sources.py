"""Sources (directory, S3 prefix, Git repository) synced into collections, and what each sync saw.

``sources`` holds each source's settings and last sync; ``source_objects`` what the last syncs saw
of each object (ETag, size, modified time, version id, content hash) and the document it became.
Existing documents keep their sources: an absolute path of an earlier ``cairn ingest`` is renamed
to its new identity (the path relative to the folder ingested) the next time that folder is
ingested, so no document is duplicated and none is lost.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("collection", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("allowed", sa.JSON, nullable=False),
        sa.Column("every_s", sa.Float),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("last_sync", sa.JSON),
        sa.Column("next_sync_at", sa.Float),
    )
    op.create_index("ix_sources_collection", "sources", ["collection"])
    op.create_table(
        "source_objects",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(1024), primary_key=True),
        sa.Column("doc_id", sa.String(64), nullable=False),
        sa.Column("etag", sa.String(200)),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("modified", sa.Float),
        sa.Column("version_id", sa.String(200)),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(64)),
        sa.Column("synced_at", sa.Float, nullable=False),
    )
    op.create_index("ix_source_objects_doc", "source_objects", ["doc_id"])


def downgrade() -> None:
    op.drop_index("ix_source_objects_doc", table_name="source_objects")
    op.drop_table("source_objects")
    op.drop_index("ix_sources_collection", table_name="sources")
    op.drop_table("sources")
