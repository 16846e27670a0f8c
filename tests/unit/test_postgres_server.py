"""A real PostgreSQL server on loopback (cairn.stack.postgres): who gets in, where it listens, stop and restart."""

# The fixtures are imported below, so each test's parameter of the same name "redefines" them.

from __future__ import annotations

import socket
import stat
from pathlib import Path

import psutil
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from tests.netns_helpers import external_addresses

from cairn.stack.postgres import PostgresNotInstalledError, PostgresServer, PostgresStartError, find_binaries
from cairn.stack.seaweed import loopback_ports_free


def _connect(url: str, **overrides: object) -> psycopg.Connection[tuple[object, ...]]:
    """A plain psycopg connection to the database a SQLAlchemy URL names, with its credentials unless overridden."""
    parts = make_url(url)
    params: dict[str, object] = {
        "host": parts.host,
        "port": parts.port,
        "user": parts.username,
        "password": parts.password,
        "dbname": parts.database,
        "connect_timeout": 5,
    }
    params.update(overrides)
    return psycopg.connect(**params)  # type: ignore[arg-type]


def _still_running(processes: list[psutil.Process]) -> list[psutil.Process]:
    running = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
        except psutil.NoSuchProcess:
            pass
    return running


def test_the_url_logs_sqlalchemy_in_as_the_application_role_which_is_no_superuser(postgres_url: str) -> None:
    """A SQLAlchemy psycopg URL on 127.0.0.1 that reaches database `cairn` as role `cairn`, not a superuser."""
    assert postgres_url.startswith("postgresql+psycopg://cairn:")
    assert make_url(postgres_url).host == "127.0.0.1"
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            who = conn.execute(
                sa.text("SELECT current_user, current_database(), rolsuper FROM pg_roles WHERE rolname = current_user")
            ).one()
    finally:
        engine.dispose()
    assert tuple(who) == ("cairn", "cairn", False)


def test_a_wrong_or_missing_password_is_refused(postgres_url: str) -> None:
    """Password authentication (scram-sha-256) over TCP: a wrong password or none at all does not get in."""
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(postgres_url, password="not-the-password")
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        _connect(postgres_url, password="", passfile="/dev/null")


def test_it_listens_on_127_0_0_1_only_with_its_socket_in_the_data_directory(
    postgres_server: PostgresServer,
) -> None:
    """One TCP listener, on 127.0.0.1; nothing on the host's other addresses; the unix socket in the data directory."""
    assert postgres_server.pid is not None
    postmaster = psutil.Process(postgres_server.pid)
    listeners = {
        (c.laddr.ip, c.laddr.port) for c in postmaster.net_connections("inet") if c.status == psutil.CONN_LISTEN
    }
    assert listeners == {("127.0.0.1", postgres_server.port)}
    for address in external_addresses():
        with pytest.raises(ConnectionRefusedError), socket.create_connection((address, postgres_server.port), 2):
            pass
    socket_file = postgres_server.data_dir / f".s.PGSQL.{postgres_server.port}"
    assert stat.S_ISSOCK(socket_file.stat().st_mode)
    assert not Path(f"/tmp/.s.PGSQL.{postgres_server.port}").exists()
    # The socket serves, and asks for the password too.
    with _connect(postgres_server.url, host=str(postgres_server.data_dir)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("cairn",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(postgres_server.url, host=str(postgres_server.data_dir), password="not-the-password")


def test_the_server_never_runs_as_root_and_owns_its_data_directory(postgres_server: PostgresServer) -> None:
    """PostgreSQL refuses root: started by root, it runs as an unprivileged account that owns the data directory."""
    assert postgres_server.pid is not None
    uids = psutil.Process(postgres_server.pid).uids()
    assert uids.real != 0
    assert uids.effective != 0
    assert postgres_server.data_dir.stat().st_uid == uids.effective
    assert stat.S_IMODE(postgres_server.state_path.stat().st_mode) == 0o600  # it holds the passwords


def test_fresh_postgres_url_is_an_empty_database_of_its_own_that_the_application_owns(
    fresh_postgres_url: str,
    postgres_url: str,
) -> None:
    """Each test gets a new database, with no tables, in which the application role may create tables."""
    assert make_url(fresh_postgres_url).database != make_url(postgres_url).database
    with _connect(fresh_postgres_url) as conn:
        tables = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE documents (id integer PRIMARY KEY)")


def test_drop_database_removes_it_even_with_a_connection_left_open(postgres_server: PostgresServer) -> None:
    """What `fresh_postgres_url` does after each test: the database goes, even if the test leaked a connection."""
    url = postgres_server.create_database("test_left_open")
    leaked = _connect(url)
    try:
        postgres_server.drop_database("test_left_open")
        with pytest.raises(psycopg.OperationalError, match="does not exist"):
            _connect(url)
    finally:
        leaked.close()


def test_stop_leaves_no_postgres_process_and_frees_the_port(tmp_path: Path) -> None:
    """stop() ends the postmaster and every process it started, and the port can be bound again."""
    server = PostgresServer(tmp_path / "pg").start()
    try:
        assert server.pid is not None
        postmaster = psutil.Process(server.pid)
        processes = [postmaster, *postmaster.children(recursive=True)]
        assert len(processes) > 1  # checkpointer, background writer, WAL writer, ...
    finally:
        server.stop()
    assert server.pid is None
    assert _still_running(processes) == []
    assert loopback_ports_free([server.port or 0])


def test_a_second_start_on_the_same_root_keeps_the_data_and_the_url(tmp_path: Path) -> None:
    """Credentials and the port are kept in the root's state file: a restart serves the same URL and the same rows."""
    first = PostgresServer(tmp_path / "pg").start()
    try:
        with _connect(first.url) as conn:
            conn.execute("CREATE TABLE notes (body text)")
            conn.execute("INSERT INTO notes VALUES ('survives a restart')")
        url = first.url
    finally:
        first.stop()
    second = PostgresServer(tmp_path / "pg").start()
    try:
        assert second.url == url
        with _connect(second.url) as conn:
            assert conn.execute("SELECT body FROM notes").fetchall() == [("survives a restart",)]
    finally:
        second.stop()


def test_a_server_that_cannot_listen_is_a_start_error_with_its_log(tmp_path: Path) -> None:
    """A taken port: start() fails with PostgreSQL's own reason from its log, and leaves nothing running."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        server = PostgresServer(tmp_path / "pg", port=taken.getsockname()[1], startup_timeout=30)
        with pytest.raises(PostgresStartError, match="exited with code") as failure:
            server.start()
    assert "Address already in use" in str(failure.value)
    assert server.pid is None


def test_missing_binaries_are_an_error_that_names_the_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `postgres` on PATH or under /usr/lib/postgresql, the error says which package to install."""
    monkeypatch.setattr("cairn.stack.postgres._DEBIAN_BINARIES", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PostgresNotInstalledError, match="Debian package `postgresql`"):
        find_binaries()
