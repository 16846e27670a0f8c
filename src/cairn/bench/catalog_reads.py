"""`cairn bench catalog-reads`: what reading the catalog on every search adds to its latency.

Every search reads the catalog afresh, in one snapshot (`SqlCatalog.snapshot`): the collection's
state, its hidden row sets, and, after the engine answers, the documents of its hits. That is how a
change any process commits is seen by the next request of every other, so this is the price of
cross-process visibility. The bench fills a catalog with *size* live documents (plus a few hidden
row sets, as during an ingest) and times exactly those reads for k hits, nothing else: no engine,
no embedding. Targets (issue 16): p50 ≤ 1 ms on SQLite, ≤ 3 ms on a local PostgreSQL.
"""

from __future__ import annotations

import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cairn.catalog import CollectionState, DocumentRecord, RowSet, SqlCatalog, VersionRecord

__all__ = ["run_catalog_read_bench"]


def _documents(size: int) -> list[DocumentRecord]:
    return [
        DocumentRecord(
            doc_id=f"{n:032x}",
            source=f"/corpus/dept-{n % 97}/doc-{n}.md",
            tenant="acme" if n % 3 else "globex",
            allowed=["*"] if n % 5 else ["group:finance"],
            live=1,
            versions=[
                VersionRecord(
                    version=1,
                    sha256=f"{n:064x}",
                    size=4096,
                    mime="text/markdown",
                    created_at=1.0,
                    chunks=8,
                    chunks_key=f"collections/bench/docs/{n:032x}/v000001.parquet",
                )
            ],
        )
        for n in range(size)
    ]


def _one_search(catalog: SqlCatalog, hit_ids: list[str]) -> float:
    started = time.perf_counter()
    with catalog.snapshot("bench") as snapshot:
        snapshot.hidden_rows()
        snapshot.documents(hit_ids)
    return time.perf_counter() - started


def run_catalog_read_bench(
    *, url: str | None = None, size: int = 100_000, k: int = 10, searches: int = 1000, seed: int = 7
) -> dict[str, Any]:
    """Time the catalog reads of *searches* searches of *k* hits on a catalog of *size* documents."""
    scratch = tempfile.TemporaryDirectory(prefix="cairn-bench-catalog-reads-")
    catalog = SqlCatalog(url or f"sqlite:///{Path(scratch.name) / 'catalog.db'}")
    try:
        catalog.drop_collection("bench")
        state = CollectionState(name="bench", embed_model="all-MiniLM-L6-v2", dim=384)
        hidden = [RowSet(doc_id=f"{n:032x}", version=2) for n in range(0, 40, 5)]
        filled = time.perf_counter()
        catalog.load_collection(state, _documents(size), hidden=hidden)
        fill_s = time.perf_counter() - filled
        rng = random.Random(seed)
        for _ in range(20):  # warm the connection pool and the page cache
            _one_search(catalog, [f"{rng.randrange(size):032x}" for _ in range(k)])
        timings = sorted(
            _one_search(catalog, [f"{rng.randrange(size):032x}" for _ in range(k)]) for _ in range(searches)
        )
        backend = catalog.engine.dialect.name
        return {
            "bench": "catalog-reads",
            "what": "one search's catalog reads: snapshot (collection state), hidden row sets, the hits' documents",
            "backend": backend,
            "catalog": catalog.describe(),
            "documents": size,
            "hidden_rowsets": len(hidden),
            "k": k,
            "searches": searches,
            "fill_s": round(fill_s, 2),
            "p50_ms": round(statistics.median(timings) * 1000, 3),
            "p99_ms": round(timings[int(len(timings) * 0.99) - 1] * 1000, 3),
            "mean_ms": round(statistics.fmean(timings) * 1000, 3),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "sqlite": sqlite3.sqlite_version,
                "platform": platform.platform(),
            },
        }
    finally:
        catalog.drop_collection("bench")
        catalog.close()
        scratch.cleanup()
