"""Component outages: each server of the stack stops mid-ingest and mid-query-load, then starts again.

One stack of this module's own (SeaweedFS S3, Milvus 2.3.5 standalone, PostgreSQL), two `cairn serve`
replicas and one `cairn worker` process, as deployed. For each component in turn: uploads are acknowledged,
the component is stopped while their jobs run and while both replicas answer queries, then started again.
While it is down, a query answers within seconds, either from what is still there (200) or with a 503
whose code names the component; /readyz names it; acknowledged jobs pause (queued again, never failed). Once
it is back, the jobs resume by themselves, every acknowledged document is present exactly once, and
`verify` is clean.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.server.stack_helpers import server_settings, unique
from tests.server.test_replicas import CAIRN, Replica, _environment

from cairn import Cairn
from cairn.stack import LocalStack

# What /readyz calls each stack server, and the error code a request gets while it is down.
READY_NAME = {"milvus": "index", "s3": "vault", "postgres": "catalog"}
ERROR_CODE = {"milvus": "index_unavailable", "s3": "storage_unavailable", "postgres": "catalog_unavailable"}
# "Fast": a request during an outage answers within this (the Milvus read timeout is 5 s, S3's 10 s per attempt).
FAST_S = 15.0
# Jobs that meet an outage wait 1 s, then 2 s, at most 4 s between tries, up to 60 tries.
JOB_RETRY = {"CAIRN_JOB_RETRY_S": "1", "CAIRN_JOB_RETRY_MAX_S": "4", "CAIRN_JOB_MAX_FAULTS": "60"}


@dataclass
class Deployment:
    stack: LocalStack
    exports: dict[str, str]
    store: str
    admin: Cairn
    tokens: dict[str, str]
    replicas: list[Replica]
    env: dict[str, str]
    log_dir: Path
    worker: subprocess.Popen[bytes] | None = None
    acknowledged: dict[str, str] = field(default_factory=dict)  # job id -> "collection/name"

    def start_worker(self) -> None:
        with (self.log_dir / "worker.log").open("ab") as out:
            self.worker = subprocess.Popen(
                [CAIRN, "worker", "--poll", "0.5"],
                env={**self.env, "CAIRN_HOME": str(self.log_dir / "worker-home")},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGTERM)
            try:
                self.worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.worker.pid, signal.SIGKILL)
                self.worker.wait()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """This module's own stack (its components are stopped here), two replicas and a worker over it."""
    root = tmp_path_factory.mktemp("outages")
    stack = LocalStack(root / "stack-home")
    replicas: list[Replica] = []
    admin: Cairn | None = None
    deployed: Deployment | None = None
    try:
        exports = stack.up()
        store = f"s3://cairn/outages-{uuid.uuid4().hex[:8]}"
        previous = {name: os.environ.get(name) for name in exports if name.startswith("AWS_")}
        os.environ.update({name: value for name, value in exports.items() if name.startswith("AWS_")})
        admin = Cairn(server_settings(exports, root / "admin", store=store, retire_grace_s=0.0))
        tokens = {
            "admin": admin.create_key(role="admin", tenant="acme")[0],
            "editor": admin.create_key(role="editor", tenant="acme", groups=["ops"])[0],
            "reader": admin.create_key(role="reader", tenant="acme", groups=["ops"])[0],
        }
        env = {**_environment(exports, root / "unused", store), **JOB_RETRY}
        if "PYTHONPATH" in os.environ:  # the servers run the code under test (a checkout's src/, say)
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        replicas = [Replica({**env, "CAIRN_HOME": str(root / f"pod-{i}")}, root / f"pod-{i}.log") for i in "ab"]
        deployed = Deployment(stack, exports, store, admin, tokens, replicas, env, root)
        deployed.start_worker()
        yield deployed
    finally:
        if deployed is not None:
            deployed.stop_worker()
        for replica in replicas:
            replica.stop()
        if admin is not None:
            admin.close()
        stack.down()  # its data and logs stay in pytest's temporary directory, for a failure's post-mortem
        for name, value in locals().get("previous", {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _request(method: str, url: str, token: str, **kwargs: Any) -> tuple[httpx.Response | None, float]:
    """The response (None when the connection itself failed) and the seconds it took."""
    started = time.monotonic()
    try:
        response = httpx.request(method, url, headers={"Authorization": f"Bearer {token}"}, timeout=60, **kwargs)
    except httpx.HTTPError:
        return None, time.monotonic() - started
    return response, time.monotonic() - started


def _upload(deployed: Deployment, replica: Replica, collection: str, name: str) -> httpx.Response:
    text = f"# {name}\n\nRunbook {name}: the {name} pump is checked every {len(name)} hours.\n"
    response, _ = _request(
        "POST",
        f"{replica.url}/v1/collections/{collection}/documents",
        deployed.tokens["editor"],
        files=[("files", (f"{name}.md", text.encode(), "text/markdown"))],
        data={"allow": "ops"},
    )
    assert response is not None
    if response.status_code == 202:
        deployed.acknowledged[str(response.json()["job_id"])] = f"{collection}/{name}.md"
    return response


def _job(deployed: Deployment, job_id: str) -> dict[str, Any] | None:
    for replica in deployed.replicas:
        response, _ = _request("GET", f"{replica.url}/v1/jobs/{job_id}", deployed.tokens["editor"])
        if response is not None and response.status_code == 200:
            return dict(response.json())
    return None


def _search(replica: Replica, token: str, collection: str) -> tuple[httpx.Response | None, float]:
    body = {"query": "pump checked hours", "collection": collection, "k": 3}
    return _request("POST", f"{replica.url}/v1/search", token, json=body)


def _ready(replica: Replica) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    response = httpx.get(f"{replica.url}/readyz", timeout=30)
    return response.status_code, dict(response.json()), time.monotonic() - started


def _wait(check: Any, within: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within, f"{what}: not within {within:g} s"
        time.sleep(0.5)
    return time.monotonic() - started


@pytest.mark.parametrize("component", ["milvus", "s3", "postgres"])
def test_a_stopped_component_fails_requests_fast_pauses_jobs_and_loses_nothing(
    deployment: Deployment, component: str
) -> None:
    """Stop one component while uploads run and both replicas answer queries: queries answer within FAST_S (200,
    or 503 with the component's code), /readyz names it, acknowledged jobs are never failed; started again, both
    replicas are ready and answer 200, every acknowledged upload ends done, each document exists once, verify is
    clean."""
    deployed = deployment
    a, b = deployed.replicas
    reader = deployed.tokens["reader"]
    collection = unique(f"out_{component}")
    first = [_upload(deployed, a, collection, f"{component}-before-{n}") for n in range(3)]
    assert [r.status_code for r in first] == [202, 202, 202], [r.text for r in first]
    _wait(lambda: all((_job(deployed, j) or {}).get("state") == "done" for j in deployed.acknowledged), 240, "jobs")
    mid = [_upload(deployed, b, collection, f"{component}-mid-{n}") for n in range(4)]
    assert [r.status_code for r in mid] == [202] * 4, [r.text for r in mid]

    deployed.stack.stop(component)  # mid-ingest: the worker is on these jobs
    stopped_at = time.monotonic()
    try:
        during: list[tuple[int | None, str, float]] = []
        outage_ends = time.monotonic() + 25
        while time.monotonic() < outage_ends:
            for replica in (a, b):
                response, seconds = _search(replica, reader, collection)
                code = "" if response is None or response.status_code == 200 else response.json()["error"]["code"]
                during.append((None if response is None else response.status_code, code, seconds))
            time.sleep(0.5)
        status, ready, ready_s = _ready(a)
        upload_during = _upload(deployed, a, collection, f"{component}-during")
        jobs_during = {j: (_job(deployed, j) or {}).get("state") for j in deployed.acknowledged}
    finally:
        deployed.stack.start(component)
    back_at = time.monotonic()

    assert all(status_code is not None for status_code, _, _ in during), during
    assert max(seconds for _, _, seconds in during) < FAST_S, during
    assert {(s, c) for s, c, _ in during} <= {(200, ""), (503, ERROR_CODE[component])}, during
    if component != "s3":  # the index and the catalog are on every query's path; the vault is not
        assert (503, ERROR_CODE[component]) in {(s, c) for s, c, _ in during}, during
    assert status == 503, ready
    assert ready["status"] == "unavailable", ready
    assert ready["components"][READY_NAME[component]] in ("unavailable", "timeout"), ready
    assert [state for name, state in ready["components"].items() if name != READY_NAME[component]] == ["ok", "ok"]
    assert ready_s < FAST_S
    if upload_during.status_code != 202:  # refused, so not acknowledged: the caller knows to send it again
        assert (upload_during.status_code, upload_during.json()["error"]["code"]) == (503, ERROR_CODE[component])
    assert "failed" not in jobs_during.values(), jobs_during

    recovered = _wait(lambda: all(_ready(r)[0] == 200 for r in (a, b)), 120, "ready again")
    resumed = _wait(
        lambda: all((_job(deployed, j) or {}).get("state") in ("done", "failed") for j in deployed.acknowledged),
        300,
        "jobs done",
    )
    states = {j: (_job(deployed, j) or {}) for j in deployed.acknowledged}
    assert all(job["state"] == "done" for job in states.values()), states
    print(
        f"\n{component}: down {back_at - stopped_at:.1f} s; slowest request during {max(s for *_, s in during):.1f} s;"
        f" ready again {recovered:.1f} s after start; jobs done {resumed:.1f} s later"
    )

    expected = sorted(name.split("/", 1)[1] for name in deployed.acknowledged.values() if name.startswith(collection))
    documents = deployed.admin.documents(collection=collection)
    sources = sorted(Path(d.source.removeprefix("upload:")).name for d in documents)
    assert sources == expected  # every acknowledged upload, each once
    # One live version each; a try that met the outage after reserving a version number leaves that number unused.
    assert [len(d.versions) for d in documents] == [1] * len(documents), [d.versions for d in documents]
    report = deployed.admin.verify(collection=collection)
    assert report.clean, report.issues
    assert report.rows == report.chunks == sum(d.chunks for d in documents)

    answers = _answers_within(deployed, reader, collection, 60)
    assert answers == {a.url: 200, b.url: 200}, answers
    hits = _search(a, reader, collection)[0]
    assert hits is not None
    assert hits.json()["hits"], hits.text


def _answers_within(deployed: Deployment, token: str, collection: str, within: float) -> dict[str, int]:
    """Each replica's last search status, polled until all answer 200 or *within* seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        answers = {r.url: getattr(_search(r, token, collection)[0], "status_code", 0) for r in deployed.replicas}
        if set(answers.values()) == {200} or time.monotonic() > deadline:
            return answers
        time.sleep(1)
