"""A document's source is unique within its collection, and tenants are indexed per collection.

Document ids are now random (not derived from the source, so not guessable from a name); the
unique source is what makes two writers of one new document agree on one id. Until now ids were
a hash of the source, so existing catalogs hold no duplicate sources.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_documents_source", table_name="documents")
    op.create_index("uq_documents_source", "documents", ["collection", "source"], unique=True)
    op.create_index("ix_documents_tenant", "documents", ["collection", "tenant"])


def downgrade() -> None:
    op.drop_index("ix_documents_tenant", table_name="documents")
    op.drop_index("uq_documents_source", table_name="documents")
    op.create_index("ix_documents_source", "documents", ["collection", "source"])
