"""Pytest fixtures for a real PostgreSQL server (see cairn/stack/postgres.py); import them into a conftest.py.

    from tests.pg_fixtures import fresh_postgres_url, postgres_server, postgres_url  # noqa: F401

`postgres_server` is one server for the whole session (initdb and start take about a second), stopped at the end
of the session whatever the tests did; `postgres_url` is the SQLAlchemy URL of its application database;
`fresh_postgres_url` is the URL of a new, empty database on it for each test, dropped afterwards (with any
connection the test left open), so tests never see each other's tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from cairn.stack.postgres import PostgresServer


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A running PostgreSQL server on 127.0.0.1 with password authentication, stopped at the end of the session."""
    server = PostgresServer(tmp_path_factory.mktemp("postgres")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """`postgresql+psycopg://cairn:...@127.0.0.1:PORT/cairn`: the session server's database, as its owner."""
    return postgres_server.url


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database on the session's server, owned by the application role; dropped after."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)
