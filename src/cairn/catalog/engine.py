"""Opening the catalog database: SQLite in ``CAIRN_HOME`` by default, PostgreSQL by URL; migrations on open.

SQLite runs in WAL mode so readers never wait for a writer; a write transaction starts with
``BEGIN IMMEDIATE`` so two writers queue for the lock (up to the busy timeout) instead of failing
half way. PostgreSQL connections time out after a few seconds, so an unreachable catalog is a
clear `CatalogError`, not a hang.

Migrations (Alembic, ``migrations/versions``) run under a lock, so two processes starting at once
apply each step exactly once: an advisory lock on PostgreSQL, the write lock on SQLite. A failed
step rolls back with its transaction and leaves the previous schema and data as they were.
"""

from __future__ import annotations

import functools
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from cairn.errors import CatalogError

__all__ = [
    "TransientCatalogError",
    "catalog_engine",
    "current_revision",
    "head_revision",
    "migrate",
    "retried",
    "write_transaction",
]

P = ParamSpec("P")
R = TypeVar("R")

# Any number; the same in every process: the advisory lock that serialises migrations on PostgreSQL.
_MIGRATION_LOCK = 0x6361_6972_6E00
_MIGRATING = threading.Lock()  # held by the thread of this process that runs Alembic


def catalog_engine(url: str) -> Engine:
    """An engine for *url*; for a SQLite file, its folder is created and the file kept private (0600)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            path = Path(database)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600, exist_ok=True)
            os.chmod(path, 0o600)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})
        _sqlite_transactions(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        args: dict[str, Any] = {"connect_timeout": 5, "application_name": "cairn"}
        return create_engine(url, connect_args=args, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise CatalogError(
        f"CAIRN_CATALOG_URL uses {parsed.get_backend_name()!r}; cairn's catalog runs on SQLite "
        "(sqlite:///path/catalog.db) or PostgreSQL (postgresql+psycopg://user:password@host/db)"
    )


def _sqlite_transactions(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun below, not by the driver
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        writes = connection.get_execution_options().get("cairn_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it takes the write lock at once (no upgrade deadlock)."""
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(cairn_write=True)
            with connection.begin():
                yield connection
    except DBAPIError as exc:
        if _transient(exc):
            raise TransientCatalogError(_describe(engine, exc)) from exc
        raise CatalogError(_describe(engine, exc)) from exc


class TransientCatalogError(CatalogError):
    """A write transaction lost a race (a deadlock, a serialization failure, a busy SQLite file): retry it."""


def _transient(exc: DBAPIError) -> bool:
    state = getattr(exc.orig, "sqlstate", None)
    return state in ("40P01", "40001") or "database is locked" in str(exc.orig)


def retried(method: Callable[P, R]) -> Callable[P, R]:
    """Run a catalog write again (its transaction rolled back whole) when it lost a race; give up after 6 tries."""

    @functools.wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(6):
            try:
                return method(*args, **kwargs)
            except TransientCatalogError:
                if attempt == 5:
                    raise
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")

    return run


def _describe(engine: Engine, exc: SQLAlchemyError) -> str:
    where = engine.url.render_as_string(hide_password=True)
    first = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"the catalog at {where} failed: {first}; check that the database is running and reachable "
        "(CAIRN_CATALOG_URL), then retry"
    )


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", "cairn.catalog:migrations")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config_for_scripts()).get_current_head()
    assert head is not None
    return head


def _alembic_config_for_scripts() -> Config:
    config = Config()
    config.set_main_option("script_location", "cairn.catalog:migrations")
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to *revision* under the migration lock; a failed step changes nothing."""
    try:
        # Alembic's `op` and `context` are process-wide: two threads migrating (even two databases) at once mix
        # their steps up, so one thread of a process migrates at a time.
        with _MIGRATING, write_transaction(engine) as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            command.upgrade(_alembic_config(connection), revision)
    except CatalogError:
        raise
    except SQLAlchemyError as exc:
        raise CatalogError(
            f"migrating the catalog failed ({_describe(engine, exc)}); the previous schema and data are unchanged"
        ) from exc
