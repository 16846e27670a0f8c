"""Alembic's entry point: migrations run on the connection `cairn.catalog.engine.migrate` hands over."""

from __future__ import annotations

from alembic import context

from cairn.catalog.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
