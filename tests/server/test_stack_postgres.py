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


def test_two_stack_ups_at_once_take_turns_and_start_each_server_once(
    stack: tuple[LocalStack, dict[str, str]],
) -> None:
    """Two `cairn stack up` processes started together on a stopped stack both succeed with the same settings,
    and each server runs once (the second finds what the first started); the catalog's rows survive."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    local, exports = stack
    with _connect(exports["CAIRN_CATALOG_URL"]) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS twice (n int)")
        conn.execute("INSERT INTO twice VALUES (7)")
    local.down()
    env = {**os.environ, "CAIRN_HOME": str(local.root.parent)}
    cairn = str(Path(sys.executable).parent / "cairn")
    ups = [
        subprocess.Popen([cairn, "stack", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [up.communicate(timeout=300) for up in ups]
    assert [up.returncode for up in ups] == [0, 0], outputs
    assert outputs[0][0] == outputs[1][0]  # the same export lines
    state = local._load()
    assert state is not None
    # Every program started for this stack (it names the stack's folder on its command line) runs once: count
    # the processes whose parent is not the same program (postgres and milvus have children of their own).
    processes = [
        (proc.pid, proc.info["ppid"], proc.info["name"], " ".join(proc.info["cmdline"] or []))
        for proc in psutil.process_iter(["cmdline", "name", "ppid"])
    ]
    names = {pid: name for pid, _, name, _ in processes}
    roots: dict[str, int] = {}
    for _, ppid, name, cmdline in processes:
        if str(local.root) in cmdline and names.get(ppid) != name:
            roots[name] = roots.get(name, 0) + 1
    assert roots, "no server of the stack found"
    assert all(count == 1 for count in roots.values()), roots
    assert local.status().postgres_running
    assert local.exports() == exports
    with _connect(exports["CAIRN_CATALOG_URL"]) as conn:
        assert conn.execute("SELECT n FROM twice").fetchone() == (7,)
