"""Many processes over one Milvus server, one S3 vault and one PostgreSQL catalog (the stack), as deployed.

Two `cairn serve` replicas with separate homes, CLIs and workers share nothing but the stack: what one
acknowledges, the others find; what one narrows, the others enforce on their next request; writers of
one collection never lose or double a document.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.server.stack_helpers import server_settings, unique

from cairn import Cairn
from cairn.index.milvus import open_index
from cairn.stack import LocalStack

CAIRN = str(Path(sys.executable).parent / "cairn")


def _environment(stack_env: dict[str, str], home: Path, store: str) -> dict[str, str]:
    """The environment a pod of this deployment gets: the stack's settings, a home of its own, one vault."""
    return {
        **stack_env,
        "CAIRN_HOME": str(home),
        "CAIRN_STORE": store,
        "CAIRN_S3_ADDRESSING_STYLE": "path",
        "CAIRN_RETIRE_GRACE_S": "1",
        "HF_HUB_OFFLINE": "1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Replica:
    """One `cairn serve` process on a port of its own."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [CAIRN, "serve", "--port", str(self.port), "--no-worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"cairn serve exited:\n{log.read_text()}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"cairn serve was not ready within 90 s:\n{log.read_text()}")

    def call(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method, f"{self.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=60, **kwargs
        )

    def search(self, token: str, query: str, collection: str) -> list[str]:
        response = self.call("POST", "/v1/search", token, json={"query": query, "collection": collection, "k": 5})
        assert response.status_code == 200, response.text
        return [Path(hit["source"].removeprefix("upload:")).name for hit in response.json()["hits"]]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def deployment(stack: tuple[LocalStack, dict[str, str]], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Keys in a fresh vault prefix, and two replicas over it with homes of their own."""
    _, exports = stack
    store = f"s3://cairn/replicas-{uuid.uuid4().hex[:8]}"
    env = {name: value for name, value in exports.items()}
    admin_home = tmp_path / "admin"
    for name, value in env.items():
        if name.startswith("AWS_"):
            os.environ[name] = value
    local = Cairn(server_settings(exports, admin_home, store=store))
    tokens = {
        "admin": local.create_key(role="admin", tenant="acme")[0],
        "editor": local.create_key(role="editor", tenant="acme", groups=["finance"])[0],
        "finance": local.create_key(role="reader", tenant="acme", groups=["finance"])[0],
    }
    replicas = [Replica(_environment(env, tmp_path / f"pod-{i}", store), tmp_path / f"pod-{i}.log") for i in "ab"]
    try:
        yield {"replicas": replicas, "tokens": tokens, "env": env, "store": store, "local": local}
    finally:
        for replica in replicas:
            replica.stop()
        local.close()


def _eventually(check: Any, within: float) -> float:
    """Seconds until *check()* is true; fails after *within* seconds."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within, "not seen in time"
        time.sleep(0.05)
    return time.monotonic() - started


def test_replicas_see_each_others_writes_and_enforce_narrowing_on_the_next_request(
    deployment: dict[str, Any], tmp_path: Path
) -> None:
    """A document a CLI ingests is found through both replicas within 1 s; an ACL narrowed, a document deleted
    and a key revoked through replica A are enforced by replica B on its very next request."""
    a, b = deployment["replicas"]
    tokens = deployment["tokens"]
    collection = unique("replicas")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "merger.md").write_text("# Project Heron\n\nThe merger with Globex closes on 14 March.\n")
    (docs / "canteen.md").write_text("# Canteen\n\nThe canteen serves lentil soup on Thursdays.\n")
    cli = _environment(deployment["env"], tmp_path / "cli", deployment["store"])
    done = subprocess.run(
        [CAIRN, "ingest", str(docs), "-c", collection, "--tenant", "acme", "--allow", "finance", "--json"],
        env=cli,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for replica in (a, b):  # acknowledged by the CLI process: both replicas find it within a second
        seconds = _eventually(
            lambda r=replica: "merger.md" in r.search(tokens["finance"], "merger Globex", collection), 1.0
        )
        assert seconds < 1.0

    listed = a.call("GET", f"/v1/collections/{collection}/documents", tokens["editor"]).json()["documents"]
    merger = next(d for d in listed if d["source"].endswith("merger.md"))
    canteen = next(d for d in listed if d["source"].endswith("canteen.md"))
    narrowed = a.call(
        "PUT",
        f"/v1/collections/{collection}/documents/{merger['doc_id']}/acl",
        tokens["editor"],
        json={"allow": ["board"]},
    )
    assert narrowed.status_code == 200, narrowed.text
    assert "merger.md" not in b.search(tokens["finance"], "merger Globex", collection)

    removed = a.call("DELETE", f"/v1/collections/{collection}/documents/{canteen['doc_id']}", tokens["editor"])
    assert removed.status_code == 200, removed.text
    assert "canteen.md" not in b.search(tokens["finance"], "lentil soup Thursdays", collection)
    listed_on_b = b.call("GET", f"/v1/collections/{collection}/documents", tokens["finance"]).json()["documents"]
    assert [Path(d["source"]).name for d in listed_on_b] == []  # merger narrowed away, canteen removed

    key_id = tokens["finance"].split("_")[1]
    assert a.call("DELETE", f"/v1/keys/{key_id}", tokens["admin"]).status_code == 200
    assert (
        b.call("POST", "/v1/search", tokens["finance"], json={"query": "soup", "collection": collection}).status_code
        == 401
    )


def test_four_writer_processes_into_one_collection_lose_and_double_nothing(
    stack: tuple[LocalStack, dict[str, str]], tmp_path: Path
) -> None:
    """Four `cairn ingest` processes × 50 documents into one collection at once, 10 of them shared by all four:
    every document is present exactly once with one version, the index holds exactly their rows, verify is clean."""
    _, exports = stack
    store = f"s3://cairn/writers-{uuid.uuid4().hex[:8]}"
    collection = unique("writers")
    shared = tmp_path / "shared"
    shared.mkdir()
    for n in range(10):
        (shared / f"policy-{n:02d}.md").write_text(
            f"# Policy {n}\n\nShared rule number {n}: badge {n * 7} opens door {n}.\n"
        )
    writers = []
    for w in range(4):
        own = tmp_path / f"own-{w}"
        own.mkdir()
        for n in range(40):
            (own / f"note-{w}-{n:02d}.md").write_text(f"# Note {w}-{n}\n\nWriter {w} logged pump {n} at {n * 3} bar.\n")
        env = {**_environment(exports, tmp_path / f"home-{w}", store), "CAIRN_INGEST_BATCH_CHUNKS": "8"}
        writers.append(
            subprocess.Popen(
                [CAIRN, "ingest", str(shared), str(own), "-c", collection, "--json"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = [w.communicate(timeout=600) for w in writers]
    failures = [out[-3000:] + err[-3000:] for w, (out, err) in zip(writers, results, strict=True) if w.returncode]
    assert failures == [], "\n---\n".join(failures)
    os.environ.update({k: v for k, v in exports.items() if k.startswith("AWS_")})
    cairn = Cairn(server_settings(exports, tmp_path / "check", store=store, retire_grace_s=0.0))
    try:
        documents = cairn.documents(collection=collection)
        sources = [Path(d.source).name for d in documents]
        assert len(sources) == len(set(sources)) == 170
        for doc in documents:  # one version each; its number may be 2 or more where a duplicate was dropped
            assert len(doc.versions) == 1, doc.source
            assert doc.versions[0].version == doc.version, doc.source
        report = cairn.verify(collection=collection)
        assert report.clean, report.issues
        assert report.rows == report.chunks == sum(d.chunks for d in documents)
    finally:
        cairn.close()


_OPEN_AT = """
import sys, time
from cairn.index.milvus import open_index
from cairn.settings import Settings
index = open_index(Settings())
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
index.ensure_collection(sys.argv[2], 384)
"""


def test_processes_making_one_new_collection_at_once_all_get_it(
    stack: tuple[LocalStack, dict[str, str]], tmp_path: Path
) -> None:
    """Six processes make the same new engine collection 5 ms apart, while the first is still creating it and
    its indexes: none fails (each finds the collection or waits for its indexes), and the alias names it."""
    _, exports = stack
    collection = unique("race")
    start = time.time() + 15.0  # every process has connected by then
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT, str(start + n * 0.005), collection],
            env=_environment(exports, tmp_path / f"home-{n}", f"s3://cairn/race-{n}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(6)
    ]
    results = [racer.communicate(timeout=120) for racer in racers]
    failures = [err[-2000:] for racer, (_, err) in zip(racers, results, strict=True) if racer.returncode]
    assert failures == [], "\n---\n".join(failures)
    index = open_index(server_settings(exports, tmp_path / "check"))
    assert index.alias_target(collection) == index.engine_name(collection)
    assert index.count(collection) == 0


def _upload(replica: Replica, token: str, collection: str, name: str, text: str) -> str:
    response = replica.call(
        "POST",
        f"/v1/collections/{collection}/documents",
        token,
        files=[("files", (name, text.encode(), "text/plain"))],
        data={"allow": "finance"},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def test_uploads_through_either_replica_are_queued_in_the_catalog_and_run_by_a_worker(
    deployment: dict[str, Any], tmp_path: Path
) -> None:
    """An upload through A is a job B answers for; a `cairn worker` process runs it, and once it is done B finds
    the document within 1 s. One upload to each replica at once: both documents end up present."""
    a, b = deployment["replicas"]
    tokens = deployment["tokens"]
    collection = unique("uploads")
    first = _upload(a, tokens["editor"], collection, "heron.md", "# Heron\n\nProject Heron ships the kestrel valve.\n")
    seen = b.call("GET", f"/v1/jobs/{first}", tokens["editor"])
    assert seen.status_code == 200, seen.text
    assert seen.json()["state"] in ("queued", "running")
    env = _environment(deployment["env"], tmp_path / "worker", deployment["store"])
    worker = subprocess.Popen(
        [CAIRN, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        second = _upload(a, tokens["editor"], collection, "osprey.md", "# Osprey\n\nThe osprey pump runs at 7 bar.\n")
        third = _upload(b, tokens["editor"], collection, "egret.md", "# Egret\n\nThe egret fan spins at 900 rpm.\n")

        def done(job_id: str) -> bool:
            state = b.call("GET", f"/v1/jobs/{job_id}", tokens["editor"]).json()["state"]
            assert state != "failed", state
            return bool(state == "done")

        _eventually(lambda: done(first), 240)
        assert _eventually(lambda: "heron.md" in b.search(tokens["finance"], "kestrel valve", collection), 1.0) < 1.0
        _eventually(lambda: done(second) and done(third), 240)
        names = [
            Path(d["source"]).name
            for d in a.call("GET", f"/v1/collections/{collection}/documents", tokens["finance"]).json()["documents"]
        ]
        assert sorted(names) == ["upload:egret.md", "upload:heron.md", "upload:osprey.md"]
        assert "osprey.md" in a.search(tokens["finance"], "osprey pump bar", collection)[0]
        assert "egret.md" in b.search(tokens["finance"], "egret fan rpm", collection)[0]
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
