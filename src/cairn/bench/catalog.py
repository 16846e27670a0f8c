"""`cairn bench catalog`: what committing a batch and starting a process cost against collection size.

Issue 16 asks that a batch of 256 chunks costs the same within 2× at 10k, 100k and 1M documents, and that
start-up does not load the whole catalog. For each size a fresh catalog is filled with synthetic documents
(one committed version each, written in bulk), then batches are committed with exactly the catalog calls
`Ingestor._commit` makes: the collection's state (maintenance lease, then the collection), ``reserve``,
``publish`` and the janitor's ``sweep`` (pending versions, retired rows, forgetting them). Index inserts and
deletes and chunk-file writes are not timed: they are the engine's and the vault's work, the same at every size.

Start-up is timed in a new process: open the catalog (migrations checked) and make the reads a first search
makes (the collection, then one snapshot's hidden rows).

Beside it, the JSON manifest the catalog replaced, on its own code path: every batch saved the whole manifest
three times (rows pending, batch published, retired rows gone), each save a JSON dump, a write and a deep copy
for the in-process readers; a process started by reading and validating the whole file.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from cairn.bench.ingest import machine
from cairn.catalog import CollectionState, DocumentRecord, RowSet, SqlCatalog, VersionDraft, VersionRecord
from cairn.catalog import schema as t
from cairn.catalog.engine import write_transaction
from cairn.catalog.janitor import LocalReaders, sweep
from cairn.catalog.writers import this_process
from cairn.ingest import document_id
from cairn.vault.backend import LocalDirStore
from cairn.vault.manifest import Manifest
from cairn.vault.store import Vault, sha256_hex

__all__ = ["run_catalog_bench"]

COLLECTION = "bench"
BATCH_DOCUMENTS = 16
CHUNKS_PER_DOCUMENT = 16  # 16 × 16 = 256 chunks: the pipeline's batch (CAIRN_INGEST_BATCH_CHUNKS)
_FILL_PAGE = 5000
_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_DIM = 384

_STARTUP = """
import json, os, time
def peak_rss_kib():  # VmHWM: this process's own peak (ru_maxrss would count the parent it was forked from)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
began = time.perf_counter()
from cairn.catalog import SqlCatalog
imported = time.perf_counter()
catalog = SqlCatalog(os.environ["CAIRN_BENCH_CATALOG_URL"])
opened = time.perf_counter()
state = catalog.collection(os.environ["CAIRN_BENCH_COLLECTION"])
with catalog.snapshot(state.name) as snapshot:
    hidden = snapshot.hidden_rows()
read = time.perf_counter()
catalog.close()
print(json.dumps({"import_s": imported - began, "open_s": opened - imported, "read_s": read - opened,
                  "peak_rss_mib": peak_rss_kib() / 1024}))
"""


def run_catalog_bench(
    sizes: Sequence[int] = (10_000, 100_000, 1_000_000),
    *,
    batches: int = 100,
    url: str | None = None,
    postgres: bool = False,
    old_manifest_up_to: int = 100_000,
    old_batches: int = 5,
    startup_runs: int = 5,
    chunks_per_version: int = 10,
    plot: Path | None = None,
    seed: int = 16,
) -> dict[str, Any]:
    """Commit p50/p99 and start-up of the catalog at each size, with the old manifest's up to *old_manifest_up_to*.

    Each size is a collection of its own: in a fresh SQLite file, or with *postgres* a fresh database on a
    scratch PostgreSQL server, or with *url* a ``bench_<size>`` collection in that database (dropped after).
    All sizes are filled first, then batches (and start-ups) go round the sizes in turn, so a machine shared
    with other work slows every size alike.
    """
    if url is not None and postgres:
        raise ValueError("give either url (an existing database) or postgres (a scratch server), not both")
    sizes = sorted(set(sizes))
    with (
        tempfile.TemporaryDirectory(prefix="cairn-bench-catalog-") as scratch,
        _databases(Path(scratch), url, postgres) as database_for,
        contextlib.ExitStack() as opened,
    ):
        workloads: list[_Workload] = []
        for size in sizes:
            workload = _Workload(opened.enter_context(database_for(size)), size, chunks_per_version, seed)
            opened.callback(workload.close, drop=url is not None)
            workload.fill()
            workloads.append(workload)
        for _ in range(batches):
            for workload in workloads:
                workload.commit_batch()
        for _ in range(startup_runs):
            for workload in workloads:
                workload.start_process()
        results = [workload.summary() for workload in workloads]
        for entry in results:
            size = entry["documents"]
            entry["old_manifest"] = (
                _measure_manifest(Path(scratch) / f"vault-{size}", size, old_batches, chunks_per_version, seed)
                if size <= old_manifest_up_to
                else None
            )
        backend, server = _describe_backend(url, postgres)
    p50s = [r["commit"]["p50_s"] for r in results]
    p99s = [r["commit"]["p99_s"] for r in results]
    result: dict[str, Any] = {
        "benchmark": "catalog",
        "backend": backend,
        "machine": {**machine(), "sqlite": sqlite3.sqlite_version, "sqlalchemy": sqlalchemy.__version__, **server},
        "batch": {
            "documents": BATCH_DOCUMENTS,
            "chunks_per_document": CHUNKS_PER_DOCUMENT,
            "chunks": BATCH_DOCUMENTS * CHUNKS_PER_DOCUMENT,
            "new_documents": BATCH_DOCUMENTS // 2,
            "new_versions_of_existing": BATCH_DOCUMENTS - BATCH_DOCUMENTS // 2,
        },
        "fill": {"versions_per_document": 1, "chunks_per_version": chunks_per_version},
        "batches": batches,
        "old_batches": old_batches,
        "startup_runs": startup_runs,
        "results": results,
        "flat": {
            "commit_p50_max_over_min": round(max(p50s) / min(p50s), 2),
            "commit_p99_max_over_min": round(max(p99s) / min(p99s), 2),
            "within_2x": max(p50s) <= 2 * min(p50s),
        },
        "notes": [
            "commit = maintenance lease + collection read, reserve, publish and the janitor's sweep, as "
            "Ingestor._commit calls them; index inserts/deletes and chunk-file writes are not the catalog's "
            "cost and are not timed (the sweep's row deletion is a no-op, its grace 0 s, so every batch "
            "forgets the rows it retired); cpu_p50_s is this process's CPU time (all of it on SQLite, the "
            "client's share on PostgreSQL)",
            "sizes are measured in turn, batch by batch, so load from other work on the machine falls on all alike",
            "startup p50_s = SqlCatalog(url) (migrations checked) + collection() + one snapshot's hidden_rows(), "
            "timed inside a new process; process_p50_s adds the interpreter and imports; peak_rss_mib is that "
            "process's own peak",
            "old manifest: its own code path (3 × JSON dump + write to a local directory + deep copy per "
            "batch; load = read + Manifest.model_validate_json), on a local directory, its cheapest vault; "
            f"not measured above {old_manifest_up_to:,} documents (a 1M-document manifest takes minutes per batch)",
        ],
    }
    if plot is not None:
        _plot(result, plot)
        result["plot"] = str(plot)
    return result


# -- the catalog -----------------------------------------------------------------------------------------------
class _Workload:
    """One size: a collection filled with synthetic documents, the batches committed to it and its start-ups."""

    def __init__(self, url: str, size: int, chunks_per_version: int, seed: int) -> None:
        self.url, self.size, self.chunks_per_version = url, size, chunks_per_version
        self.name = f"bench_{size}"
        self.catalog = SqlCatalog(url)
        self.rng = random.Random(seed + size)
        self.readers, self.writer = LocalReaders(), this_process()
        self.next_new = size
        self.fill_s = 0.0
        self.steps: dict[str, list[float]] = {"state": [], "reserve": [], "publish": [], "sweep": []}
        self.totals: list[float] = []
        self.cpu: list[float] = []
        self.startups: list[dict[str, float]] = []

    def close(self, *, drop: bool) -> None:
        if drop:
            self.catalog.drop_collection(self.name)
        self.catalog.close()

    def fill(self) -> None:
        """*size* live documents, one committed version each, inserted a page at a time in one transaction."""
        began = time.perf_counter()
        self.catalog.drop_collection(self.name)
        self.catalog.load_collection(CollectionState(name=self.name, embed_model=_MODEL, dim=_DIM), [])
        with write_transaction(self.catalog.engine) as connection:
            for lo in range(0, self.size, _FILL_PAGE):
                documents, versions = [], []
                for i in range(lo, min(self.size, lo + _FILL_PAGE)):
                    doc_id = document_id(_source(i))
                    documents.append(
                        {
                            "collection": self.name,
                            "doc_id": doc_id,
                            "source": _source(i),
                            "tenant": "default",
                            "allowed": ["*"] if i % 10 else ["finance", "legal"],
                            "live": 1,
                            "updated_at": 0.0,
                        }
                    )
                    version = _version(self.name, doc_id, 1, sha256_hex(f"bytes of {i}"), self.chunks_per_version)
                    versions.append(
                        {"collection": self.name, "doc_id": doc_id, "state": "committed", "writer": None}
                        | version.model_dump()
                    )
                connection.execute(insert(t.documents), documents)
                connection.execute(insert(t.versions), versions)
        with self.catalog.engine.connect() as connection:  # the steady state: statistics gathered, WAL folded back
            if connection.dialect.name == "postgresql":
                connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
            else:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        self.fill_s = time.perf_counter() - began

    def commit_batch(self) -> None:
        """One batch (half new documents, half new versions of existing ones), committed as the pipeline does."""
        catalog, name, halves = self.catalog, self.name, BATCH_DOCUMENTS // 2
        numbers = [*self.rng.sample(range(self.size), BATCH_DOCUMENTS - halves)]
        numbers += range(self.next_new, self.next_new + halves)
        self.next_new += halves
        drafts = [_draft(n, self.rng) for n in numbers]
        cpu, began = time.thread_time(), time.perf_counter()
        catalog.maintenance_holder(name)
        state = catalog.collection(name)
        assert state is not None
        reserving = time.perf_counter()
        reserved = catalog.reserve(
            name, drafts, writer=self.writer, chunks_key=functools.partial(Vault.chunks_key, name)
        )
        publishing = time.perf_counter()
        published = catalog.publish(
            name,
            [(draft, version.version) for draft, (_, version) in zip(drafts, reserved, strict=True)],
            generation=state.generation,
        )
        sweeping = time.perf_counter()
        forgotten = sweep(catalog, state, delete_rows=_no_rows, readers=self.readers, grace_s=0.0, stale_after_s=3600.0)
        ended = time.perf_counter()
        self.cpu.append(time.thread_time() - cpu)
        if any(p.outcome != "live" for p in published) or forgotten != BATCH_DOCUMENTS - halves:
            raise AssertionError(f"the bench's batch did not commit as planned: {published}, {forgotten} retired")
        spans = (reserving - began, publishing - reserving, sweeping - publishing, ended - sweeping)
        for step, seconds in zip(self.steps, spans, strict=True):
            self.steps[step].append(seconds)
        self.totals.append(ended - began)

    def start_process(self) -> None:
        """Open the catalog and make a first search's reads in a new process."""
        environment = {**os.environ, "CAIRN_BENCH_CATALOG_URL": self.url, "CAIRN_BENCH_COLLECTION": self.name}
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _STARTUP], env=environment, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - began
        if done.returncode != 0:
            raise RuntimeError(f"the start-up probe failed: {done.stderr.strip()[-2000:]}")
        sample = json.loads(done.stdout.strip().splitlines()[-1])
        self.startups.append({**sample, "startup_s": sample["open_s"] + sample["read_s"], "process_s": wall})

    def summary(self) -> dict[str, Any]:
        def median(key: str) -> float:
            return float(np.median([s[key] for s in self.startups]))

        return {
            "documents": self.size,
            "fill_s": round(self.fill_s, 1),
            "database_bytes": _database_bytes(self.catalog),
            "commit": {
                **_percentiles(self.totals),
                "mean_s": round(float(np.mean(self.totals)), 5),
                "max_s": round(max(self.totals), 5),
                "cpu_p50_s": round(float(np.median(self.cpu)), 5),
                "steps_p50_s": {step: round(float(np.median(values)), 5) for step, values in self.steps.items()},
            },
            "startup": {
                "p50_s": round(median("startup_s"), 4),
                "open_p50_s": round(median("open_s"), 4),
                "read_p50_s": round(median("read_s"), 4),
                "process_p50_s": round(median("process_s"), 3),
                "peak_rss_mib": round(max(s["peak_rss_mib"] for s in self.startups), 1),
            },
        }


def _no_rows(_index_name: str, _rowsets: Sequence[RowSet]) -> None:
    """The engine's row deletion, left out: not the catalog's cost."""


def _database_bytes(catalog: SqlCatalog) -> int:
    with catalog.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            return int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    database = Path(make_url(catalog.url).database or "")
    return sum(p.stat().st_size for p in (database, Path(f"{database}-wal")) if p.exists())


@contextlib.contextmanager
def _databases(
    scratch: Path, url: str | None, postgres: bool
) -> Iterator[Callable[[int], contextlib.AbstractContextManager[str]]]:
    """A factory of one catalog URL per size: a fresh SQLite file, a fresh PostgreSQL database, or *url*."""
    if url is not None:
        yield lambda _size: contextlib.nullcontext(url)
        return
    if not postgres:

        @contextlib.contextmanager
        def sqlite_file(size: int) -> Iterator[str]:
            path = scratch / f"catalog-{size}.db"
            try:
                yield f"sqlite:///{path}"
            finally:
                for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                    leftover.unlink(missing_ok=True)

        yield sqlite_file
        return
    from cairn.stack.postgres import PostgresServer

    server = PostgresServer(scratch / "postgres").start()

    @contextlib.contextmanager
    def database(size: int) -> Iterator[str]:
        name = f"bench_{size}"
        try:
            yield server.create_database(name)
        finally:
            server.drop_database(name)

    try:
        yield database
    finally:
        server.stop()


def _describe_backend(url: str | None, postgres: bool) -> tuple[str, dict[str, str]]:
    """The database's kind, and its server's version where it has one."""
    if postgres:
        return "postgresql", {"postgresql": _scratch_version()}
    if url is not None and make_url(url).get_backend_name() == "postgresql":
        return "postgresql", {"postgresql": _server_version(url)}
    return "sqlite", {}


def _server_version(url: str) -> str:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SHOW server_version")).scalar_one())
    finally:
        engine.dispose()


def _scratch_version() -> str:
    from cairn.stack.postgres import find_binaries

    done = subprocess.run([str(find_binaries() / "postgres"), "--version"], capture_output=True, text=True)
    found = re.search(r"\(PostgreSQL\) (\S+)", done.stdout)  # postgres (PostgreSQL) 15.18 (Debian ...)
    return found.group(1) if found else done.stdout.strip()


# -- the old manifest ------------------------------------------------------------------------------------------
def _measure_manifest(folder: Path, size: int, batches: int, chunks_per_version: int, seed: int) -> dict[str, Any]:
    """The manifest's batch commit and load, on its own code path (see the module docstring)."""
    vault = Vault(LocalDirStore(folder))
    manifest = Manifest(collection=COLLECTION, embed_model=_MODEL, dim=_DIM)
    for i in range(size):
        doc_id = document_id(_source(i))
        version = _version(COLLECTION, doc_id, 1, sha256_hex(f"bytes of {i}"), chunks_per_version)
        manifest.documents[doc_id] = DocumentRecord(doc_id=doc_id, source=_source(i), live=1, versions=[version])

    def save() -> None:  # Ingestor._save: the vault's copy, then LiveManifest.publish's deep copy for readers
        vault.save_manifest(manifest)
        copy.deepcopy(manifest)

    save()
    rng = random.Random(seed + size)
    new, totals = size, []
    for _ in range(batches):
        halves = BATCH_DOCUMENTS // 2
        numbers = [*rng.sample(range(size), BATCH_DOCUMENTS - halves), *range(new, new + halves)]
        new += halves
        began = time.perf_counter()
        records, rows = [], []
        for n in numbers:
            doc_id = document_id(_source(n))
            record = manifest.documents.get(doc_id) or DocumentRecord(doc_id=doc_id, source=_source(n))
            number = max((v.version for v in record.versions), default=0) + 1
            records.append((record, _version(COLLECTION, doc_id, number, _random_sha(rng), CHUNKS_PER_DOCUMENT)))
            rows.append(RowSet(doc_id=doc_id, version=number))
        manifest.pending.extend(rows)  # 1. the batch's rows announced hidden
        save()
        retired = []  # 2. published: every document switched to its new version
        for record, version in records:
            if record.live is not None:
                retired.append(RowSet(doc_id=record.doc_id, version=record.live))
            record.versions.append(version)
            record.live = version.version
            manifest.documents[record.doc_id] = record
        manifest.pending = [r for r in manifest.pending if r not in rows]
        manifest.retired.extend(retired)
        save()
        manifest.retired = []  # 3. the replaced rows deleted (index work not timed)
        save()
        totals.append(time.perf_counter() - began)
    loads = []
    for _ in range(3):
        began = time.perf_counter()
        Manifest.model_validate_json(vault.store.get(Vault.manifest_key(COLLECTION)))
        loads.append(time.perf_counter() - began)
    return {
        "commit": {**_percentiles(totals), "batches": batches},
        "load_p50_s": round(float(np.median(loads)), 3),
        "manifest_bytes": len(vault.store.get(Vault.manifest_key(COLLECTION))),
    }


# -- synthetic documents ---------------------------------------------------------------------------------------
def _source(n: int) -> str:
    return f"/srv/corpus/dept-{n % 97:02d}/report-{n:07d}.pdf"


def _version(collection: str, doc_id: str, number: int, sha256: str, chunks: int) -> VersionRecord:
    return VersionRecord(
        version=number,
        sha256=sha256,
        size=180_000,
        mime="application/pdf",
        created_at=time.time(),
        chunks=chunks,
        chunks_key=Vault.chunks_key(collection, doc_id, number),
    )


def _random_sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def _draft(n: int, rng: random.Random) -> VersionDraft:
    return VersionDraft(
        doc_id=document_id(_source(n)),
        source=_source(n),
        sha256=_random_sha(rng),
        size=180_000,
        mime="application/pdf",
        chunks=CHUNKS_PER_DOCUMENT,
    )


def _percentiles(seconds: list[float]) -> dict[str, float]:
    p50, p99 = np.percentile(np.asarray(seconds), [50, 99])
    return {"p50_s": round(float(p50), 5), "p99_s": round(float(p99), 5)}


def _plot(result: dict[str, Any], path: Path) -> None:
    from cairn.bench.plots import plot_lines

    rows = result["results"]
    old = [r for r in rows if r["old_manifest"] is not None]
    series: dict[str, tuple[list[float], list[float]]] = {
        "catalog commit p50": ([r["documents"] for r in rows], [r["commit"]["p50_s"] for r in rows]),
        "catalog commit p99": ([r["documents"] for r in rows], [r["commit"]["p99_s"] for r in rows]),
        "catalog start-up (open + first read)": ([r["documents"] for r in rows], [r["startup"]["p50_s"] for r in rows]),
    }
    if old:
        sizes = [r["documents"] for r in old]
        series["manifest commit p50"] = (sizes, [r["old_manifest"]["commit"]["p50_s"] for r in old])
        series["manifest commit p99"] = (sizes, [r["old_manifest"]["commit"]["p99_s"] for r in old])
        series["manifest load"] = (sizes, [r["old_manifest"]["load_p50_s"] for r in old])
    plot_lines(
        series,
        path,
        title=f"one batch of {result['batch']['chunks']} chunks, and start-up, against collection size "
        f"({result['backend']})",
        xlabel="documents in the collection",
        ylabel="seconds (log)",
        logx=True,
        logy=True,
    )
