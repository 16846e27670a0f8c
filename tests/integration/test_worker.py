"""Durable upload jobs across processes: any replica answers for a job, `cairn worker` processes run it, and a
worker killed with SIGKILL mid-job has its job finished exactly once by another.

Real processes throughout: two services in uvicorn on loopback over one CAIRN_HOME (one SQLite catalog, one
vault), and `cairn worker` / `cairn verify` as the CLI runs them. Milvus Lite admits one process at a time, so
the workers run one after the other and the test process opens the engine only after they have exited.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.uvicorn_thread import served as uvicorn_served

from cairn import Cairn, Settings
from cairn.http import create_app
from cairn.jobs import queue_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANT = "acme"
FILES = 60


@contextmanager
def served(app: FastAPI) -> Iterator[httpx.Client]:
    """*app* in uvicorn on a free loopback port until the block ends; yields a client for it."""
    with uvicorn_served(app) as url, httpx.Client(base_url=url, timeout=30.0) as client:
        yield client


def _cli(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("cairn")
    return (
        [str(script), *args] if script.exists() else [sys.executable, "-c", "from cairn.cli import main; main()", *args]
    )


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "CAIRN_HOME": str(home), **extra}


def _upload(client: httpx.Client, token: str, files: dict[str, str]) -> dict[str, Any]:
    parts = [("files", (name, text.encode(), "text/plain")) for name, text in files.items()]
    response = client.post(
        "/v1/collections/default/documents",
        headers={"Authorization": f"Bearer {token}"},
        files=parts,
        data={"allow": "*"},
    )
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


def test_a_queued_upload_is_seen_by_every_replica_and_run_by_a_worker_process(cairn: Cairn, tmp_path: Path) -> None:
    """With no embedded worker, an upload through replica A is answered 202 with its bytes staged in the vault and
    its job queued in the catalog; replica B (another app and Cairn on the same CAIRN_HOME) answers for the job
    and lists it. A `cairn worker --until-idle` process then runs it: both replicas see it done, the staged bytes
    are gone, and the document is searchable by its upload name."""
    home = cairn.settings.home
    token, _ = cairn.create_key(role="editor", tenant=TENANT)
    headers = {"Authorization": f"Bearer {token}"}
    replica_b = Cairn(Settings(home=home))
    try:
        with served(create_app(cairn, worker=False)) as a, served(create_app(replica_b, worker=False)) as b:
            job = _upload(a, token, {"merger.txt": "The merger with Globex closes on the first of June.\n"})
            job_id = job["job_id"]
            assert job["state"] == "queued"
            assert list(cairn.vault.store.list(f"uploads/{job_id}/")) == [f"uploads/{job_id}/0"]
            time.sleep(1.0)  # nobody runs it: no worker anywhere
            for replica in (a, b):
                seen = replica.get(f"/v1/jobs/{job_id}", headers=headers)
                assert (seen.status_code, seen.json()["state"]) == (200, "queued")
            assert [j["job_id"] for j in b.get("/v1/jobs", headers=headers).json()["jobs"]] == [job_id]

            worker = subprocess.run(
                _cli("worker", "--until-idle"), env=_env(home), capture_output=True, text=True, timeout=300
            )
            assert worker.returncode == 0, worker.stdout + worker.stderr
            assert "stopped after 1 job" in worker.stdout

            for replica in (a, b):
                done = replica.get(f"/v1/jobs/{job_id}", headers=headers).json()
                assert (done["state"], done["report"]["ingested"], done["attempts"]) == ("done", 1, 1)
            events = b.get(f"/v1/jobs/{job_id}/events", headers=headers).text
            assert '"state": "done"' in events
            assert list(cairn.vault.store.list("uploads/")) == []
            assert [p for p in (home / "jobs").rglob("*") if p.is_file()] == []

            hits = a.post("/v1/search", json={"query": "When does the Globex merger close?"}, headers=headers).json()
            assert hits["hits"][0]["source"] == "upload:merger.txt"
    finally:
        replica_b.close()


def _wait_for_progress(cairn: Cairn, job_id: str, worker: subprocess.Popen[str], at_least: int) -> None:
    queue = queue_for(cairn.catalog)
    deadline = time.monotonic() + 240
    while (job := queue.get(job_id)).done < at_least:
        assert worker.poll() is None, "the worker exited before it could be killed"
        assert job.state != "done", "the job finished before the worker could be killed"
        assert time.monotonic() < deadline, f"the worker made no progress: {job}"
        time.sleep(0.1)


def test_a_worker_killed_mid_job_leaves_it_to_another_that_finishes_it_exactly_once(
    cairn: Cairn, tmp_path: Path
) -> None:
    """A 60-file upload; worker 1 (one chunk per commit, so each file is committed on its own) is killed with
    SIGKILL, Milvus Lite and all, after a few files. Worker 2 claims the job at once (its holder is gone) and
    finishes it: the job is done on its second attempt, every file is one document with one version and one
    set of rows, nothing is staged, and `cairn verify` is clean."""
    home = cairn.settings.home
    token, _ = cairn.create_key(role="editor", tenant=TENANT)
    files = {
        f"note-{n:02d}.md": f"# Note {n}\n\nThe ledger entry {n * 7919 % 10007} is filed under cabinet {n}.\n"
        for n in range(FILES)
    }
    with served(create_app(cairn, worker=False)) as service:
        job_id = _upload(service, token, files)["job_id"]
    env = _env(home, CAIRN_INGEST_BATCH_CHUNKS="1")

    first = subprocess.Popen(
        _cli("worker"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group: its Milvus Lite server dies with it
    )
    try:
        _wait_for_progress(cairn, job_id, first, at_least=5)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    cut = queue_for(cairn.catalog).get(job_id)
    assert cut.state == "running", cut
    assert 5 <= cut.done < FILES, cut

    second = subprocess.run(_cli("worker", "--until-idle"), env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    verify = subprocess.run(_cli("verify"), env=_env(home), capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    job = queue_for(cairn.catalog).get(job_id)
    assert (job.state, job.attempts) == ("done", 2), job
    assert job.report is not None
    assert job.report.failed == []
    assert job.report.ingested + job.report.unchanged == FILES
    assert job.report.unchanged >= 5  # what the killed worker had committed was not ingested again
    documents = cairn.documents()
    sources = Counter(d.source for d in documents)
    assert sources == Counter(f"upload:{name}" for name in files)
    assert {len(cairn.document(d.doc_id).versions) for d in documents} == {1}
    rowsets = set(cairn.index.indexed_chunks("default").values())
    assert Counter(r.doc_id for r in rowsets) == Counter(d.doc_id for d in documents), "rows of two versions"
    assert cairn.index.count("default") == FILES  # one chunk per note: no row twice, none missing
    assert list(cairn.vault.store.list("uploads/")) == []
    hits = cairn.search("ledger entry filed under cabinet 42", k=1, mode="keyword").hits
    assert hits[0].source == "upload:note-42.md"


def test_serve_runs_an_embedded_worker_unless_told_not_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cairn serve` starts a worker with its app (in the app's lifespan); `cairn serve --no-worker` does not."""
    import uvicorn
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from cairn.cli import app

    home = tmp_path / "home"
    monkeypatch.setenv("CAIRN_HOME", str(home))
    with Cairn(Settings(home=home)) as admin:
        admin.create_key(role="admin", tenant=TENANT)
    workers: list[bool] = []

    def run(asgi: FastAPI, **_options: Any) -> None:
        with TestClient(asgi):
            workers.append(asgi.state.jobs.worker is not None)
        assert asgi.state.jobs.worker is None  # stopped with the app

    monkeypatch.setattr(uvicorn, "run", run)
    for args in (["serve"], ["serve", "--no-worker"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    assert workers == [True, False]


def test_a_worker_process_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """An idle `cairn worker` stops on SIGTERM within seconds, exits 0 and says how many jobs it ran."""
    worker = subprocess.Popen(
        _cli("worker", "--poll", "0.2"),
        env=_env(tmp_path / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    assert worker.stdout.readline().startswith("cairn worker ")  # its signal handlers are in place
    worker.send_signal(signal.SIGTERM)
    output, errors = worker.communicate(timeout=30)
    assert worker.returncode == 0, errors
    assert "stopped after 0 jobs" in output
