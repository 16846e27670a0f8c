"""PostgreSQL in `cairn stack`: the exported CAIRN_CATALOG_URL works from the host, and `down` stops the server."""

from __future__ import annotations

import contextlib

import psutil
import psycopg
import pytest
from sqlalchemy.engine import make_url
from tests.netns_helpers import listening_in_namespace_of

from cairn.stack import LocalStack

pytestmark = pytest.mark.server


def _connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    parts = make_url(url)
    return psycopg.connect(
        host=parts.host,
        port=parts.port,
        user=parts.username,
        password=parts.password,
        dbname=parts.database,
        connect_timeout=5,
        autocommit=True,
    )


def test_the_catalog_url_reaches_postgresql_in_the_stacks_namespace(stack: tuple[LocalStack, dict[str, str]]) -> None:
    """CAIRN_CATALOG_URL logs the application role in from the host; the server itself listens in the namespace."""
    local, exports = stack
    url = exports["CAIRN_CATALOG_URL"]
    assert url.startswith("postgresql+psycopg://cairn:")
    with _connect(url) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("cairn", "cairn")
    state = local._load()
    assert state is not None
    assert state.postgres_pid
    assert state.network_pid
    port = make_url(url).port
    assert port == state.postgres_port
    status = local.status()
    assert status.postgres_running
    assert status.postgres_endpoint == f"127.0.0.1:{port}"
    # On the host only the namespace holder listens on the port; PostgreSQL listens inside, on 127.0.0.1 only.
    holder = psutil.Process(state.network_pid).net_connections("tcp")
    assert ("127.0.0.1", port) in {(c.laddr.ip, c.laddr.port) for c in holder}
    postgres_listeners = {entry for entry in listening_in_namespace_of(state.postgres_pid) if entry[1] == port}
    assert postgres_listeners == {("127.0.0.1", port)}


def test_down_stops_postgresql_and_up_brings_the_catalog_back_with_its_data(
    stack: tuple[LocalStack, dict[str, str]],
) -> None:
    """`down` ends the postmaster and its backends; the next `up` serves the same URL with the rows kept."""
    local, exports = stack
    url = exports["CAIRN_CATALOG_URL"]
    with _connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS down_up (note text)")
        conn.execute("INSERT INTO down_up VALUES ('kept across down and up')")
    state = local._load()
    assert state is not None
    assert state.postgres_pid
    postmaster = psutil.Process(state.postgres_pid)
    processes = [postmaster, *postmaster.children(recursive=True)]
    local.down()
    assert [process for process in processes if _running(process)] == []
    assert not local.status().postgres_running
    with pytest.raises(psycopg.OperationalError):
        _connect(url)
    assert local.up() == exports
    with _connect(url) as conn:
        assert ("kept across down and up",) in conn.execute("SELECT note FROM down_up").fetchall()


def _running(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.NoSuchProcess):
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    return False
