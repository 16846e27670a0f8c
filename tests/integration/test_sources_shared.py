"""Sources where state is shared: identities across mount points and upgrades, the HTTP API and its
workers, two processes syncing one source, and one scheduler among many workers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cairn import Cairn, Settings
from cairn.catalog import SqlCatalog
from cairn.catalog.restore import restore_from_vault
from cairn.http import create_app
from cairn.jobs.queue import queue_for
from cairn.sources.jobs import SOURCE_SYNC, schedule_due

pytestmark = pytest.mark.integration


def test_a_folder_ingested_from_another_mount_point_names_the_same_documents(
    cairn: Cairn, docs: Path, tmp_path: Path
) -> None:
    """Identities hold no machine path: the same folder under another mount point is unchanged, not duplicated."""
    first = cairn.ingest([docs])
    assert sorted(d.source for d in cairn.documents()) == ["docs/api.html", "docs/batteries.txt", "docs/leave.md"]
    moved = tmp_path / "mnt" / "other" / "docs"
    shutil.copytree(docs, moved)
    again = cairn.ingest([moved])
    assert (again.ingested, again.unchanged) == (0, first.ingested)
    assert len(cairn.documents()) == 3


def test_documents_named_by_absolute_paths_are_renamed_to_their_identity_once(
    cairn: Cairn, docs: Path, tmp_path: Path
) -> None:
    """A document an older cairn named by its absolute path keeps its id and history under its new identity,
    in the index, the catalog and a catalog rebuilt from the vault."""
    legacy = {str(p): str(p) for p in sorted(docs.iterdir())}
    cairn.ingest([docs], sources=legacy)  # how cairn named them before identities
    before = {Path(d.source).name: d.doc_id for d in cairn.documents()}
    assert all(os.path.isabs(d.source) for d in cairn.documents())
    report = cairn.ingest([docs])
    assert (report.ingested, report.unchanged) == (0, 3)
    after = {d.source: d.doc_id for d in cairn.documents()}
    assert after == {f"docs/{name}": doc_id for name, doc_id in before.items()}
    hit = cairn.search("parental leave days", k=1).hits[0]
    assert hit.source == "docs/leave.md"
    fresh = SqlCatalog(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    restore_from_vault(cairn.vault, fresh)
    assert {d.source for d in fresh.iter_live_documents("default")} == set(after)
    fresh.close()


def test_sources_over_http_are_role_checked_audited_and_synced_by_the_worker(cairn: Cairn, tmp_path: Path) -> None:
    """Editors may not add sources; an admin's S3 source is listed without secrets; a sync is a job the worker runs."""
    root = tmp_path / "kb"
    root.mkdir()
    (root / "a.md").write_text("# Alpha\n\nThe alpha runbook restarts the ingest worker.\n")
    cairn.add_source("kb", str(root), collection="default", tenant="acme")
    admin = cairn.create_key(role="admin", tenant="acme")[0]
    editor = cairn.create_key(role="editor", tenant="acme")[0]
    other = cairn.create_key(role="admin", tenant="globex")[0]
    body = {
        "name": "bucket",
        "uri": "s3://reports/2026",
        "settings": {
            "endpoint": "http://127.0.0.1:9",
            "access_key_env": "CAIRN_SOURCE_REPORTS_KEY",
            "secret_key_env": "CAIRN_SOURCE_REPORTS_SECRET",
        },
    }
    # A key may not borrow the server's own credentials: none named (the AWS default chain), or the vault's.
    borrowing = [
        {**body, "settings": {"endpoint": "http://127.0.0.1:9"}},
        {**body, "settings": {**body["settings"], "secret_key_env": "AWS_SECRET_ACCESS_KEY"}},  # type: ignore[dict-item]
    ]
    with TestClient(create_app(cairn)) as client:
        for attempt in borrowing:
            refused = client.post("/v1/sources", json=attempt, headers=_auth(admin))
            assert refused.status_code == 403, refused.text
            assert "never lent" in refused.json()["error"]["message"]
        assert client.post("/v1/sources", json=body, headers=_auth(editor)).status_code == 403
        created = client.post("/v1/sources", json=body, headers=_auth(admin))
        assert created.status_code == 201, created.text
        listed = client.get("/v1/sources", headers=_auth(editor)).json()["sources"]
        assert sorted(s["name"] for s in listed) == ["bucket", "kb"]
        assert client.get("/v1/sources", headers=_auth(other)).json()["sources"] == []
        assert client.get("/v1/sources/kb", headers=_auth(other)).status_code == 404
        job = client.post("/v1/sources/kb/sync", headers=_auth(editor))
        assert job.status_code == 202, job.text
        finished = _wait_for(client, job.json()["job_id"], editor)
        assert finished["state"] == "done", finished
        assert (finished["report"]["files"], finished["report"]["ingested"]) == (1, 1)
    assert [d.source for d in cairn.documents()] == ["kb/a.md"]
    actions = [r.action for r in cairn.audit.records()]
    assert {"source.add", "source.sync.submit"} <= set(actions)


def test_two_processes_syncing_one_source_never_duplicate_a_version(tmp_path: Path) -> None:
    """Two `cairn sources sync` processes at once: one may be refused (the lease); every document has one version."""
    home, root = tmp_path / "home", tmp_path / "notes"
    root.mkdir()
    for n in range(8):
        (root / f"note-{n}.md").write_text(f"# Note {n}\n\nCabinet {n} holds ledger {n * 31}.\n")
    env = {**os.environ, "CAIRN_HOME": str(home)}
    with Cairn(Settings(home=home)) as setup:
        setup.add_source("notes", str(root), collection="kb")
    command = [sys.executable, "-c", "from cairn.cli import main; main()", "sources", "sync", "notes", "--json"]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outcomes = [(run.wait(timeout=600), run.stdout.read().decode(), run.stderr.read().decode()) for run in runs]  # type: ignore[union-attr]
    assert any(code == 0 for code, _, _ in outcomes), outcomes
    for code, out, _ in outcomes:
        assert code == 0 or "already running" in out, outcomes
    with Cairn(Settings(home=home)) as check:
        documents = check.documents(collection="kb")
        assert len(documents) == 8
        assert all(d.version == 1 and len(d.versions) == 1 for d in documents)
        assert check.sync_source("notes").unchanged == 8


def test_one_scheduler_enqueues_one_sync_per_due_source(cairn: Cairn, tmp_path: Path) -> None:
    """Two workers scheduling at once: the lease lets one enqueue; the due source gets one job, then waits."""
    root = tmp_path / "kb"
    root.mkdir()
    cairn.add_source("kb", str(root), collection="kb", every="15m")
    assert schedule_due(cairn, "worker-a") == ["kb"]
    assert schedule_due(cairn, "worker-b") == []
    assert schedule_due(cairn, "worker-a") == []  # not due again for 15 minutes
    jobs = [j for j in queue_for(cairn.catalog).list() if j.kind == SOURCE_SYNC]
    assert len(jobs) == 1
    next_at = cairn.source_info("kb").next_sync_at
    assert next_at is not None
    assert next_at > time.time() + 800


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _wait_for(client: TestClient, job_id: str, token: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=_auth(token)).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_a_sync_killed_mid_way_then_run_again_leaves_each_object_once(
    tmp_path: Path, seaweed: Any, seaweed_bucket: str, embedder: Any
) -> None:
    """kill -9 of a `cairn sources sync` after its first documents went live; the next sync takes over the dead
    sync's lease at once, ends with every object present exactly once, one version each, and verify is clean."""
    import signal

    home = tmp_path / "home"
    client = seaweed.client()
    for n in range(24):
        body = f"# Note {n}\n\n" + "\n\n".join(f"Cabinet {n} shelf {s} holds ledger {n * 31 + s}." for s in range(6))
        client.put_object(Bucket=seaweed_bucket, Key=f"notes/note-{n:02d}.md", Body=body.encode())
    env = {
        **os.environ,
        "CAIRN_HOME": str(home),
        "CAIRN_INGEST_BATCH_CHUNKS": "2",
        "SRC_ACCESS_KEY": seaweed.access_key,
        "SRC_SECRET_KEY": seaweed.secret_key,
    }
    settings = {
        "endpoint": seaweed.endpoint_url,
        "path_style": True,
        "access_key_env": "SRC_ACCESS_KEY",
        "secret_key_env": "SRC_SECRET_KEY",
    }
    with Cairn(Settings(home=home)) as setup:
        setup.add_source("notes", f"s3://{seaweed_bucket}/notes/", collection="kb", settings=settings)
    process = subprocess.Popen(
        [sys.executable, "-c", "from cairn.cli import main; main()", "sources", "sync", "notes", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    catalog = SqlCatalog(f"sqlite:///{home / 'catalog.db'}", migrate_on_open=False)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if catalog.collection("kb") is not None and catalog.live_counts("kb")[0] >= 2:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the sync ended before it could be killed"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        live_at_kill = catalog.live_counts("kb")[0]
        assert 0 < live_at_kill < 24, "the kill must land mid-sync"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        catalog.close()
    os.environ.update({"SRC_ACCESS_KEY": seaweed.access_key, "SRC_SECRET_KEY": seaweed.secret_key})
    try:
        with Cairn(Settings(home=home)) as again:
            again._embedder = embedder
            report = again.sync_source("notes")
            assert report.failed == []
            assert report.ingested + report.unchanged == 24
            documents = again.documents(collection="kb")
            assert len(documents) == 24
            assert all(len(d.versions) == 1 for d in documents)
            checked = again.verify(collection="kb")
            assert checked.clean, checked.issues
            assert checked.documents == 24
            assert again.sync_source("notes").unchanged == 24
    finally:
        for name in ("SRC_ACCESS_KEY", "SRC_SECRET_KEY"):
            os.environ.pop(name, None)
