"""No orphans: every process cairn starts ends when the process that started it ends, however that one ends.

Each test starts a real parent (`cairn serve` running an upload job, `cairn ingest`, `cairn worker`, a Python
program owning SeaweedFS and PostgreSQL servers), waits until its children run (the parser processes and their
forkserver, the embedding worker, multiprocessing's resource tracker, the servers), signals the parent and
then polls: no descendant may survive, and no process may still run with the test's CAIRN_HOME.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from cairn import Cairn, Settings
from cairn.jobs import queue_for
from cairn.jobs.uploads import IncomingFile, submit_upload

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FILES = 90  # enough chunks that the embedding worker starts (WORKER_START_AFTER)
STARTUP_S = 240.0  # a loaded two-core machine: importing torch and loading the model takes a while
GONE_WITHIN_S = 30.0


def _cli(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("cairn")
    return (
        [str(script), *args] if script.exists() else [sys.executable, "-c", "from cairn.cli import main; main()", *args]
    )


def _corpus_text(n: int) -> str:
    return f"# Ledger {n}\n\nEntry {n * 7919 % 10007} of the harbour ledger is filed in cabinet {n}.\n"


def _write_corpus(folder: Path) -> Path:
    folder.mkdir()
    for n in range(FILES):
        (folder / f"ledger-{n:03d}.md").write_text(_corpus_text(n))
    return folder


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return ""


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _wait_for_children(parent: subprocess.Popen[bytes], log: Path, *wanted: str) -> list[psutil.Process]:
    """The parent's descendants, once each of *wanted* appears in some descendant's command line."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        assert parent.poll() is None, f"the parent exited ({parent.returncode}):\n{log.read_text()[-3000:]}"
        children = _descendants(parent.pid)
        lines = [_cmdline(child) for child in children]
        if all(any(word in line for line in lines) for word in wanted):
            return children
        time.sleep(0.2)
    raise AssertionError(f"{wanted} did not all start within {STARTUP_S:g} s:\n{log.read_text()[-3000:]}")


def _marked_with(marker: str) -> list[psutil.Process]:
    """Processes whose environment or command line carries *marker* (the test's own CAIRN_HOME)."""
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            marked = marker in _cmdline(process) or marker in process.environ().get("CAIRN_HOME", "")
            if marked and _alive(process):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
    return found


def _assert_none_survive(parent: subprocess.Popen[bytes], children: list[psutil.Process], marker: str) -> None:
    parent.wait(timeout=GONE_WITHIN_S)
    deadline = time.monotonic() + GONE_WITHIN_S
    while True:
        survivors = [child for child in children if _alive(child)] + _marked_with(marker)
        if not survivors:
            return
        if time.monotonic() > deadline:
            described = sorted({f"{p.pid} {_cmdline(p)[:160]}" for p in survivors})
            for process in survivors:  # leave nothing behind on this machine, then fail
                _kill(process)
            raise AssertionError(f"{len(described)} processes outlived their parent:\n" + "\n".join(described))
        time.sleep(0.2)


def _kill(process: psutil.Process) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        process.kill()


def _started(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A CAIRN_HOME of this test's own; whatever still runs with it at the end is killed."""
    path = tmp_path / "home"
    yield path
    for process in _marked_with(str(path)):
        _kill(process)


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "CAIRN_HOME": str(home), "CAIRN_EMBED_WORKER": "true", "PYTHONUNBUFFERED": "1"}


# The kinds of children a parent that ingests has: the parser forkserver and its workers, the embedding
# worker (spawned), and multiprocessing's resource tracker.
INGEST_CHILDREN = ("multiprocessing.forkserver", "spawn_main", "resource_tracker")


def test_cairn_serve_stopped_with_sigterm_leaves_no_process_behind_while_an_upload_is_parsed_and_embedded(
    home: Path, tmp_path: Path
) -> None:
    """`cairn serve` running an upload job (parser processes, the embedding worker, the resource tracker): after
    a normal SIGTERM none of its children is left running (the issue measured the ~800 MB embedding worker and
    the resource tracker surviving it). `kill -9` is covered by the `cairn worker` case: the same children."""
    signum = signal.SIGTERM
    port = _free_port()
    log = tmp_path / "serve.log"
    serve = _started(_cli("serve", "--dev", "--port", str(port)), _env(home), log)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert serve.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"cairn serve did not answer:\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        parts = [("files", (f"ledger-{n:03d}.md", _corpus_text(n).encode(), "text/markdown")) for n in range(FILES)]
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/collections/default/documents", files=parts, data={"allow": "*"}, timeout=60
        )
        assert response.status_code == 202, response.text
        children = _wait_for_children(serve, log, *INGEST_CHILDREN)
        serve.send_signal(signum)
        _assert_none_survive(serve, children, str(home))
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


@pytest.mark.parametrize(
    ("kind", "signum"),
    [("ingest", signal.SIGINT), ("worker", signal.SIGKILL)],
    ids=["ingest-SIGINT", "worker-SIGKILL"],
)
def test_cli_ingest_and_worker_leave_no_process_behind(kind: str, signum: int, home: Path, tmp_path: Path) -> None:
    """`cairn ingest` interrupted with Ctrl-C (SIGINT) and `cairn worker` killed with SIGKILL mid-job: their
    parser processes, forkserver, embedding worker and resource tracker all end with them."""
    log = tmp_path / f"{kind}.log"
    if kind == "ingest":
        command = _cli("ingest", str(_write_corpus(tmp_path / "corpus")))
    else:
        _queue_upload(home)
        command = _cli("worker")
    parent = _started(command, _env(home), log)
    try:
        children = _wait_for_children(parent, log, *INGEST_CHILDREN)
        parent.send_signal(signum)
        _assert_none_survive(parent, children, str(home))
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def _queue_upload(home: Path) -> None:
    """An upload job of FILES files waiting in *home*'s catalog, as a `cairn serve --no-worker` would leave it."""
    with Cairn(Settings(home=home)) as cairn:
        files = [IncomingFile(f"ledger-{n:03d}.md", io.BytesIO(_corpus_text(n).encode())) for n in range(FILES)]
        submit_upload(
            cairn,
            queue_for(cairn.catalog),
            files,
            collection="default",
            tenant=None,
            allow=["*"],
            principal=None,
            max_bytes=1 << 20,
        )


OWNER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from cairn.stack.postgres import PostgresServer
    from cairn.stack.seaweed import SeaweedS3

    root = Path(sys.argv[1])
    s3 = SeaweedS3(root=root / "s3").start()
    pg = PostgresServer(root / "pg").start()
    print("SERVING", s3.pid, pg.pid, flush=True)
    sys.stdin.read()  # until the test ends it
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_servers_started_by_a_python_owner_end_with_it(signum: int, tmp_path: Path) -> None:
    """A program that starts SeaweedFS and PostgreSQL (as the test fixtures do) and is then terminated or killed
    (so neither its `stop()` nor `atexit` runs) takes both servers down with it: they run under a parent-death
    signal. (`cairn stack up` detaches its servers instead; tests/server/test_stack.py covers that contract.)"""
    root = tmp_path / "owned"
    log = tmp_path / "owner.log"
    with log.open("wb") as out:
        owner = subprocess.Popen(
            [sys.executable, "-c", OWNER, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=out
        )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline().decode()
        assert line.startswith("SERVING"), log.read_text()[-3000:]
        servers = [psutil.Process(int(pid)) for pid in line.split()[1:]]
        children = _descendants(owner.pid)
        assert {server.pid for server in servers} <= {child.pid for child in children}
        owner.send_signal(signum)
        _assert_none_survive(owner, children, str(root))
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


DETACHED = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from cairn.stack.seaweed import SeaweedS3

    server = SeaweedS3(root=Path(sys.argv[1]), outlive_owner=True).start()
    print(server.pid, *server.grpc_sockets, flush=True)
    server.detach()
    """
)


def test_a_server_started_to_outlive_its_owner_keeps_running_after_the_owner_exits(tmp_path: Path) -> None:
    """`cairn stack up`'s contract: a server started with outlive_owner (as the stack starts its three) and
    detached keeps serving after the starting process has exited; it is stopped by its pid later."""
    done = subprocess.run(
        [sys.executable, "-c", DETACHED, str(tmp_path / "s3")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pid, *sockets = done.stdout.split()
    server = psutil.Process(int(pid))
    try:
        time.sleep(2.0)  # a parent-death signal would have been delivered at once
        assert _alive(server), "the detached server ended with the process that started it"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        psutil.wait_procs([server], timeout=30)
        for socket_path in sockets:
            Path(socket_path).unlink(missing_ok=True)
    assert not _alive(server)
