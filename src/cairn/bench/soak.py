"""`cairn bench soak`: mixed load against two `cairn serve` replicas on the stack, with a component restarted.

Two replicas (each with its own home and its own ingest worker) share a `cairn stack`: Milvus standalone,
SeaweedFS S3 (the vault) and PostgreSQL (the catalog). For *duration* seconds, over HTTP:

* *clients* readers search and ask without pause, each request with one of four reader keys in different
  groups, alternating between the replicas;
* one editor (an admin key) uploads a document, changes a document's ACL or deletes one, every *interval*;
* one key rotator creates a reader key, searches with it, revokes it, then checks that both replicas
  refuse it (and one key revoked earlier);
* a quarter of the way in, the component *restart* (``milvus``) is stopped and started again; the load goes
  on for at least another quarter of *duration* after every replica answers a search again (``recovered_s``).

Every answer is checked as it arrives (`cairn.bench.soak_ledger`): no passage of a document the key could
not see at some moment of the request, no answer to a key after its revocation was acknowledged. When the
time is up the editor's jobs are allowed to finish, then the final check: every acknowledged upload not
deleted is in the catalog exactly once, with the ACL last set, and its rows are found exactly once by a
search; every acknowledged deletion is gone from both; ``verify`` is clean.

The report (JSON): ``phases`` (``before``/``during``/``after`` the restart, with its times), each with
``operations`` (count, errors, p50/p95/p99 ms per operation) and ``errors`` by kind (``"503 <code>"``,
``"ConnectError"``); ``operations`` and ``errors`` for the whole run; ``restart``; ``consistency`` with
``ok``; ``plot`` (a PNG of every read's latency by phase) when asked for.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from cairn.bench.ingest import machine
from cairn.bench.latency import _percentiles
from cairn.bench.soak_ledger import SoakLedger, TrackedDocument
from cairn.bench.soak_load import READER_GROUPS, TENANT, Sample, SoakLoad, error_kind
from cairn.stack import LocalStack

__all__ = ["RESTARTABLE", "bench_soak"]

RESTARTABLE = ("milvus", "none")
_ADMIN_GROUPS = ["board", "eng", "finance"]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Replica:
    """One `cairn serve` process (with its ingest worker) on a loopback port of its own."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        script = Path(sys.executable).parent / "cairn"
        command = [str(script)] if script.exists() else [sys.executable, "-c", "from cairn.cli import main; main()"]
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, "serve", "--port", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cairn serve exited ({self.process.returncode}):\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"cairn serve was not ready within {timeout:.0f} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@contextlib.contextmanager
def _stack(given: LocalStack | None, scratch: Path) -> Iterator[tuple[LocalStack, dict[str, str]]]:
    """The caller's running stack, or a new one in *scratch* that is stopped and deleted afterwards."""
    if given is not None:
        yield given, given.exports()
        return
    stack = LocalStack(scratch / "stack-home")
    try:
        yield stack, stack.up()
    finally:
        stack.down(purge=True)


def bench_soak(
    *,
    duration: float = 600.0,
    clients: int = 4,
    interval: float = 1.0,
    key_interval: float = 5.0,
    ask_share: float = 0.25,
    restart: str = "milvus",
    seed_documents: int = 10,
    settle_timeout: float = 300.0,
    check_timeout: float = 60.0,
    plot: Path | None = None,
    stack: LocalStack | None = None,
) -> dict[str, Any]:
    """Run the soak (on *stack*, or on a stack of its own) and return the report; see the module docstring."""
    if restart not in RESTARTABLE:
        raise ValueError(f"--restart takes one of {', '.join(RESTARTABLE)}, not {restart!r}")
    options: dict[str, Any] = {
        "duration": duration,
        "clients": clients,
        "interval": interval,
        "key_interval": key_interval,
        "ask_share": ask_share,
        "restart": restart,
        "seed_documents": seed_documents,
        "settle_timeout": settle_timeout,
        "check_timeout": check_timeout,
        "plot": plot,
    }
    with tempfile.TemporaryDirectory(prefix="cairn-bench-soak-") as scratch_dir:
        scratch = Path(scratch_dir)
        with _stack(stack, scratch) as (running, exports):
            return _run(running, exports, scratch, options)


def _run(stack: LocalStack, exports: dict[str, str], scratch: Path, options: dict[str, Any]) -> dict[str, Any]:
    from cairn import Cairn
    from cairn.settings import Settings

    store = f"s3://cairn/soak-{uuid.uuid4().hex[:8]}"
    os.environ.update({name: value for name, value in exports.items() if name.startswith("AWS_")})
    settings: dict[str, Any] = {
        "home": scratch / "admin",
        "milvus_uri": exports["CAIRN_MILVUS_URI"],
        "milvus_token": exports["CAIRN_MILVUS_TOKEN"],
        "milvus_bucket": exports["CAIRN_MILVUS_BUCKET"],
        "store": store,
        "s3_addressing_style": "path",
        "catalog_url": exports["CAIRN_CATALOG_URL"],
        # As the replicas: the final verify's sweep then deletes rows retired by the load's last changes, which
        # the server default (120 s) would keep hidden, counted as rows beyond the chunks.
        "retire_grace_s": 1.0,
    }
    if "CAIRN_MILVUS_TLS_CA" in exports:
        settings["milvus_tls_ca"] = exports["CAIRN_MILVUS_TLS_CA"]
    local = Cairn(Settings(**settings))
    ledger = SoakLedger()
    token, record = local.create_key(role="admin", tenant=TENANT, groups=_ADMIN_GROUPS)
    admin = (token, record.key_id)
    readers: dict[str, tuple[str, str]] = {}
    for name, groups in READER_GROUPS.items():
        token, record = local.create_key(role="reader", tenant=TENANT, groups=sorted(groups))
        readers[name] = (token, record.key_id)
        ledger.key_created(record.key_id, groups)
    ledger.key_created(admin[1], frozenset(_ADMIN_GROUPS))
    env = {
        **os.environ,
        **exports,
        "CAIRN_STORE": store,
        "CAIRN_S3_ADDRESSING_STYLE": "path",
        "CAIRN_RETIRE_GRACE_S": "1",
        "HF_HUB_OFFLINE": "1",
    }
    replicas = [_Replica({**env, "CAIRN_HOME": str(scratch / f"pod-{n}")}, scratch / f"pod-{n}.log") for n in "ab"]
    try:
        for replica in replicas:
            replica.wait_ready()
        collection = f"soak_{uuid.uuid4().hex[:8]}"
        load = SoakLoad([r.url for r in replicas], collection, admin, readers, ledger, t0=time.monotonic())
        _seed(load, options["seed_documents"], options["settle_timeout"])
        # The run's clock starts now; the seed uploads keep their (now negative) times.
        ledger.shift(load.now())
        load.t0 = time.monotonic()
        load.samples.clear()
        load.upload_acks.clear()
        restart = _drive(load, stack, options)
        unfinished = _settle(load, options["settle_timeout"])
        consistency = _consistency(load, local, collection, unfinished, options["check_timeout"])
    finally:
        for replica in replicas:
            replica.stop()
        local.close()
    return _report(load, restart, consistency, options, exports)


def _seed(load: SoakLoad, count: int, timeout: float) -> None:
    """Upload *count* documents and wait for them, so the readers have something to find from the start."""
    import random

    rng = random.Random(0)
    with httpx.Client(base_url=load.urls[0], timeout=60) as client:
        for _ in range(count):
            load.upload(client, rng)
        deadline = time.monotonic() + timeout
        while load.refresh_jobs(client) or any(d.doc_id is None for d in _acked_done(load)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {count} seed documents were not ingested within {timeout:.0f} s")
            time.sleep(0.5)


def _acked_done(load: SoakLoad) -> list[TrackedDocument]:
    return [d for d in load.ledger.snapshot() if d.upload_acked and d.job_state == "done"]


def _drive(load: SoakLoad, stack: LocalStack, options: dict[str, Any]) -> dict[str, Any]:
    """Run the load for the duration; restart the component a quarter of the way in. Returns the restart's times."""
    duration = float(options["duration"])
    threads = [
        threading.Thread(target=load.reader_loop, args=(n, options["ask_share"]), daemon=True)
        for n in range(options["clients"])
    ]
    threads.append(threading.Thread(target=load.editor_loop, args=(options["interval"],), daemon=True))
    threads.append(threading.Thread(target=load.key_loop, args=(options["key_interval"],), daemon=True))
    for thread in threads:
        thread.start()
    restart: dict[str, Any] = {"component": options["restart"]}
    try:
        if options["restart"] != "none":
            time.sleep(max(0.0, duration / 4 - load.now()))
            restart["began_s"] = round(load.now(), 2)
            stack.restart_milvus()
            restart["returned_s"] = round(load.now(), 2)
            restart["recovered_s"] = round(_recovered(load, timeout=180.0), 2)
            # However long recovery took, the load goes on for a quarter of the duration after it.
            duration = max(duration, restart["recovered_s"] + duration / 4)
        time.sleep(max(0.0, duration - load.now()))
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=120)
    restart["ended_s"] = round(load.now(), 2)
    return restart


def _recovered(load: SoakLoad, timeout: float) -> float:
    """When a search through every replica succeeded again after the restart (seconds since the start)."""
    deadline = time.monotonic() + timeout
    pending = list(load.urls)
    body = {"query": "crew reading", "collection": load.collection, "k": 1, "mode": "dense"}
    while pending and time.monotonic() < deadline:
        url = pending[0]
        with contextlib.suppress(httpx.HTTPError):
            reply = httpx.post(f"{url}/v1/search", json=body, headers=_auth(load.admin[0]), timeout=30)
            if reply.status_code == 200:
                pending.pop(0)
                continue
        time.sleep(0.5)
    return load.now()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _settle(load: SoakLoad, timeout: float) -> list[str]:
    """Wait for the acknowledged uploads' jobs to finish; the names of those still unfinished after *timeout*."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=load.urls[1 % len(load.urls)], timeout=60) as client:
        while load.refresh_jobs(client, limit=100) and time.monotonic() < deadline:
            time.sleep(1.0)
        load.refresh_jobs(client, limit=100)
    return [d.name for d in load.ledger.snapshot() if d.job_id and d.job_state in ("queued", "running")]


def _source_name(source: str) -> str:
    return source.removeprefix("upload:")


def _consistency(load: SoakLoad, local: Any, collection: str, unfinished: list[str], timeout: float) -> dict[str, Any]:
    """The final check of the catalog, the search path and the index against what the clients were told."""
    listed = local.documents(collection=collection)  # the trusted local caller: every document
    found: dict[str, list[Any]] = {}
    for info in listed:
        found.setdefault(_source_name(info.source), []).append(info)
    tracked = {d.name: d for d in load.ledger.snapshot()}
    problems: dict[str, list[str]] = {
        "missing": [],
        "duplicated": [],
        "deleted_but_present": [],
        "wrong_acl": [],
        "failed_jobs": [f"{d.name}: {d.job_error}" for d in tracked.values() if d.job_state == "failed"],
        "unfinished_jobs": unfinished,
        "unknown_present": sorted(name for name in found if name not in tracked),
    }
    counts = {"present": 0, "absent": 0, "unknown": 0}
    for name, document in tracked.items():
        copies = found.get(name, [])
        expected = document.expected()
        counts[expected] += 1
        if len(copies) > 1 or any(len(info.versions) != 1 for info in copies):
            problems["duplicated"].append(name)
        if expected == "present" and not copies:
            problems["missing"].append(name)
        elif expected == "present":
            allowed = frozenset(a.removeprefix("group:") for a in copies[0].allowed)
            if allowed != document.current_allow():
                problems["wrong_acl"].append(f"{name}: {sorted(allowed)} != {sorted(document.current_allow() or ())}")
        elif expected == "absent" and copies:
            problems["deleted_but_present"].append(name)
    deleted = [d for d in tracked.values() if d.expected() == "absent" and d.doc_id]
    search = _search_check(load, listed, deleted, timeout)
    search["missing_explained"] = [
        _explain(load, local, tracked[name], listed) for name in search["missing"][:5] if name in tracked
    ]
    verify = _verify(local, collection, {d.doc_id: d.name for d in tracked.values() if d.doc_id}, timeout)
    ledger = load.ledger.summary()
    ok = (
        not any(problems.values())
        and not any(search[k] for k in ("missing", "duplicated", "deleted_found"))
        and verify["clean"]
        and ledger["violations"] == 0
    )
    return {
        "ok": ok,
        "uploads_acknowledged": sum(1 for d in tracked.values() if d.upload_acked),
        "expected_present": counts["present"],
        "expected_absent": counts["absent"],
        "outcome_unknown": counts["unknown"],
        "catalog_documents": len(listed),
        "catalog": {name: values[:20] for name, values in problems.items()},
        "search": search,
        "verify": verify,
        "answers": ledger,
    }


def _verify(local: Any, collection: str, names: dict[str, str], timeout: float) -> dict[str, Any]:
    """`Cairn.verify` of the collection, once no version is pending (verify itself would wait for an hour)."""
    deadline = time.monotonic() + timeout
    while pending := local.catalog.pending_versions(collection):
        if time.monotonic() > deadline:
            stuck = [f"{names.get(v.rowset.doc_id, v.rowset.doc_id)} v{v.rowset.version} ({v.writer})" for v in pending]
            why = f"versions still pending {timeout:.0f} s after the load"
            return {"clean": False, "skipped": why, "pending": stuck}
        time.sleep(1.0)
    report = local.verify(collection=collection)
    return {
        "clean": report.clean,
        "documents": report.documents,
        "chunks": report.chunks,
        "rows": report.rows,
        "issues": [str(issue) for issue in report.issues[:10]],
    }


def _explain(load: SoakLoad, local: Any, document: TrackedDocument, listed: list[Any]) -> dict[str, Any]:
    """For a document the admin's search did not find: its ACL history, the catalog's ACL, and how many rows
    a search for it alone finds, through HTTP with the admin key and in this process without any principal."""
    info = next((i for i in listed if _source_name(i.source) == document.name), None)
    doc_id = info.doc_id if info is not None else document.doc_id
    alone = f'doc_id = "{doc_id}"'
    unconstrained: int | str
    try:
        found = local.search("soak record", collection=load.collection, k=10, mode="dense", filter=alone)
        unconstrained = len(found.hits)
    except Exception as exc:  # a diagnosis only: report what went wrong instead
        unconstrained = f"{type(exc).__name__}: {exc}"[:200]
    body = {"query": "soak record", "collection": load.collection, "k": 10, "mode": "dense", "filter": alone}
    reply = httpx.post(f"{load.urls[0]}/v1/search", json=body, headers=_auth(load.admin[0]), timeout=60)
    return {
        "document": document.name,
        "acl_history": [sorted(e.allow) if e.allow is not None else "deleted" for e in document.epochs],
        "catalog_allowed": list(info.allowed) if info is not None else None,
        "hits_without_principal": unconstrained,
        "hits_for_admin_alone": len(reply.json()["hits"]) if reply.status_code == 200 else error_kind(reply),
    }


def _search_check(load: SoakLoad, listed: list[Any], deleted: list[TrackedDocument], timeout: float) -> dict[str, Any]:
    """Search (admin key, filtered by document id) for every listed and every deleted document: each listed
    document's rows come back exactly once, no deleted document's do. Searches that are not strongly
    consistent may lag a recent change by a few seconds, so the check is repeated for up to *timeout* s; the
    first attempt's findings are reported too."""
    expected = {str(info.doc_id): int(info.chunks) for info in listed}
    expected.update({d.doc_id: 0 for d in deleted if d.doc_id and d.doc_id not in expected})
    names = {str(info.doc_id): _source_name(info.source) for info in listed}
    names.update({d.doc_id: d.name for d in deleted if d.doc_id})
    started = time.monotonic()
    attempts: list[dict[str, Any]] = []
    with httpx.Client(base_url=load.urls[0], timeout=60) as client:
        while True:
            attempts.append(_search_once(client, load, expected, names))
            settled = not any(attempts[-1][k] for k in ("missing", "duplicated", "deleted_found", "errors"))
            if settled or time.monotonic() - started > timeout:
                break
            time.sleep(2.0)
    return {
        "checked": len(expected),
        **attempts[-1],
        "attempts": len(attempts),
        "seconds": round(time.monotonic() - started, 2),
        "first_attempt": attempts[0],
    }


def _search_once(
    client: httpx.Client, load: SoakLoad, expected: dict[str, int], names: dict[str, str]
) -> dict[str, list[str]]:
    import json

    # A filter is at most 2,000 characters (cairn.filters): 40 ids of 32 hex digits fit; k is at most 100.
    per_batch = max(1, min(40, 100 // max([1, *expected.values()])))
    ids = sorted(expected)
    found: dict[str, list[str]] = {"missing": [], "duplicated": [], "deleted_found": [], "errors": []}
    for lo in range(0, len(ids), per_batch):
        batch = ids[lo : lo + per_batch]
        body = {
            "query": "soak record",
            "collection": load.collection,
            "k": 100,
            "mode": "dense",
            "filter": f"doc_id in {json.dumps(batch)}",
        }
        try:
            reply = client.post("/v1/search", json=body, headers=_auth(load.admin[0]))
        except httpx.HTTPError as exc:
            found["errors"].append(type(exc).__name__)
            continue
        if reply.status_code != 200:
            found["errors"].append(error_kind(reply))
            continue
        hits = reply.json()["hits"]
        rows: dict[str, list[str]] = {}
        for hit in hits:
            rows.setdefault(str(hit["doc_id"]), []).append(str(hit["chunk_id"]))
        for doc_id in batch:
            want, got = expected[doc_id], rows.get(doc_id, [])
            if want == 0 and got:
                found["deleted_found"].append(names.get(doc_id, doc_id))
            elif len(got) < want:
                found["missing"].append(names.get(doc_id, doc_id))
            elif len(got) > want or len(set(got)) != len(got):
                found["duplicated"].append(names.get(doc_id, doc_id))
    return found


def _phases(restart: dict[str, Any]) -> list[tuple[str, float, float]]:
    end = float(restart["ended_s"])
    if restart["component"] == "none":
        return [("steady", 0.0, end)]
    began, recovered = float(restart["began_s"]), float(restart["recovered_s"])
    return [("before", 0.0, began), ("during", began, recovered), ("after", recovered, end)]


def _operations(samples: list[Sample]) -> dict[str, Any]:
    """Per operation: requests, errors, and the latency of those that succeeded."""
    summary: dict[str, Any] = {}
    for op in sorted({s.op for s in samples}):
        chosen = [s for s in samples if s.op == op]
        good = [s.seconds for s in chosen if s.error is None]
        summary[op] = {"requests": len(chosen), "errors": len(chosen) - len(good), "latency_ms": _percentiles(good)}
    return summary


def _errors(samples: list[Sample]) -> dict[str, dict[str, int]]:
    """Errors by operation and kind (``"503 index_unavailable"``, ``"ReadTimeout"``)."""
    kinds: dict[str, dict[str, int]] = {}
    for sample in samples:
        if sample.error is not None:
            of_op = kinds.setdefault(sample.op, {})
            of_op[sample.error] = of_op.get(sample.error, 0) + 1
    return kinds


def _report(
    load: SoakLoad,
    restart: dict[str, Any],
    consistency: dict[str, Any],
    options: dict[str, Any],
    exports: dict[str, str],
) -> dict[str, Any]:
    spans = _phases(restart)
    samples = list(load.samples)

    def phase_of(sample: Sample) -> str:
        return next((name for name, _, ended in spans if sample.started < ended), spans[-1][0])

    phases = {
        name: {
            "span_s": [round(began, 2), round(ended, 2)],
            "operations": _operations([s for s in samples if phase_of(s) == name]),
            "errors": _errors([s for s in samples if phase_of(s) == name]),
        }
        for name, began, ended in spans
    }
    result: dict[str, Any] = {
        "benchmark": "soak",
        "machine": machine(),
        "target": "2 cairn serve replicas (an ingest worker each) over HTTP, on cairn stack: Milvus standalone, "
        "SeaweedFS S3 vault, PostgreSQL catalog (loopback)",
        "milvus_uri": exports["CAIRN_MILVUS_URI"],
        "options": {name: (str(value) if isinstance(value, Path) else value) for name, value in options.items()},
        "restart": restart,
        "phases": phases,
        "operations": _operations(samples),
        "errors": _errors(samples),
        "consistency": consistency,
    }
    plot: Path | None = options.get("plot")
    if plot is not None:
        from cairn.bench.plots import plot_latency_timeline

        answered = [s for s in samples if s.op in ("search", "ask") and s.error is None]
        reads = [(s.started, s.seconds * 1000, phase_of(s)) for s in answered]
        plot_latency_timeline(
            reads,
            spans,
            [(t, "ingest") for t in load.upload_acks],
            plot,
            title=f"cairn soak: search and ask through 2 replicas, {options['restart']} restarted",
        )
        result["plot"] = str(plot)
    return result
