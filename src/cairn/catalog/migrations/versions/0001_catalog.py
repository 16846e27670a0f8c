"""The first catalog: collections, documents, versions, retired row sets, jobs and leases.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("embed_model", sa.String(512), nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("retention_mode", sa.String(16)),
        sa.Column("retention_days", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("maintenance_holder", sa.String(200)),
        sa.Column("maintenance_until", sa.Float),
    )
    op.create_table(
        "documents",
        sa.Column("collection", sa.String(64), primary_key=True),
        sa.Column("doc_id", sa.String(64), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("allowed", sa.JSON, nullable=False),
        sa.Column("live", sa.Integer),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_documents_source", "documents", ["collection", "source"])
    op.create_index("ix_documents_live", "documents", ["collection", "live"])
    op.create_table(
        "versions",
        sa.Column("collection", sa.String(64), primary_key=True),
        sa.Column("doc_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mime", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("chunks_key", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("writer", sa.String(200)),
    )
    op.create_index("ix_versions_state", "versions", ["collection", "state"])
    op.create_index("ix_versions_sha256", "versions", ["sha256"])
    op.create_table(
        "retired",
        sa.Column("collection", sa.String(64), primary_key=True),
        sa.Column("doc_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("retired_at", sa.Float, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("collection", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("progress", sa.JSON),
        sa.Column("report", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_holder", sa.String(200)),
        sa.Column("lease_until", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
    )
    op.create_index("ix_jobs_state", "jobs", ["state", "created_at"])
    op.create_index("ix_jobs_tenant", "jobs", ["tenant", "created_at"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("leases", "jobs", "retired", "versions", "documents", "collections"):
        op.drop_table(table)
