"""`cairn bench bulk`: row inserts against bulk import from S3 on a Milvus server, by batch size.

Both paths end at the same point: the rows are persisted in the object store and searchable. Inserts go
through the proxy in batches of 1,000 and are then flushed (sealed and written to S3); a bulk import writes
one JSON file to the Milvus bucket, has the data node build segments from it, and loads them. Rows look like
cairn's: a 384-dimension unit vector, ~900 characters of text, location and metadata JSON, an ACL array.
The crossover (the smallest batch for which import is faster) sets ``CAIRN_BULK_INSERT_MIN_ROWS``.
"""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from cairn.index.bulk import BulkLoader
from cairn.index.milvus import MilvusIndex
from cairn.stack import LocalStack

__all__ = ["bench_bulk"]

_DIM = 384
_WORDS = ["policy", "battery", "region", "ticket", "invoice", "schedule", "turbine", "leave", "archive", "audit"]


def _rows(count: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, _DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = rng.integers(0, len(_WORDS), size=(count, 130))
    return [
        {
            "chunk_id": f"{seed % 0x10000:04x}{i:060x}",
            "text": " ".join(_WORDS[w] for w in words[i]),
            "dense": vectors[i].tolist(),
            "doc_id": f"{i // 20:064x}",
            "source": f"/bench/doc-{i // 20}.md",
            "version": 1,
            "tenant": "default",
            "allowed": ["*"],
            "mime": "text/markdown",
            "location": {"heading_path": ["Bench", f"Section {i % 20}"], "lines": [i, i + 10]},
            "metadata": {},
            "created_at": 0,
        }
        for i in range(count)
    ]


def bench_bulk(sizes: list[int], *, repeats: int = 1) -> dict[str, Any]:
    """Seconds to make ``n`` rows durable and searchable by each path, for each ``n`` in ``sizes``."""
    with tempfile.TemporaryDirectory(prefix="cairn-bench-bulk-") as home:
        stack = LocalStack(Path(home))
        exports = stack.up()
        try:
            index = MilvusIndex(exports["CAIRN_MILVUS_URI"], token=exports["CAIRN_MILVUS_TOKEN"])
            loader = BulkLoader(stack.s3_client(), exports["CAIRN_MILVUS_BUCKET"], min_rows=1)
            results = []
            for n in sizes:
                rows = _rows(n, seed=n)
                timings: dict[str, list[float]] = {"insert": [], "bulk": []}
                for attempt in range(repeats):
                    for path in ("insert", "bulk"):
                        collection = f"bench_{path}_{n}_{attempt}"
                        index.drop_collection(collection)
                        index.ensure_collection(collection, _DIM)
                        name = index.engine_name(collection)
                        rows = index.complete_rows(collection, rows)
                        began = time.perf_counter()
                        if path == "insert":
                            for lo in range(0, n, 1000):
                                index.client.insert(name, rows[lo : lo + 1000])
                            index.client.flush(name)
                        else:
                            loader.load(index, name, rows)
                        timings[path].append(time.perf_counter() - began)
                        if index.count(collection) != n:
                            raise RuntimeError(f"{path} of {n} rows left {index.count(collection)} rows")
                        index.drop_collection(collection)
                insert_s, bulk_s = min(timings["insert"]), min(timings["bulk"])
                results.append(
                    {
                        "rows": n,
                        "insert_s": round(insert_s, 3),
                        "bulk_s": round(bulk_s, 3),
                        "insert_rows_per_s": round(n / insert_s, 1),
                        "bulk_rows_per_s": round(n / bulk_s, 1),
                        "bulk_speedup": round(insert_s / bulk_s, 2),
                    }
                )
            crossover = next((r["rows"] for r in results if r["bulk_speedup"] > 1.0), None)
            return {
                "benchmark": "bulk",
                "engine": f"milvus-server {index.features.version} on SeaweedFS S3 (cairn stack, loopback)",
                "machine": {"cpus": _cpus(), "processor": platform.processor() or platform.machine()},
                "repeats": repeats,
                "results": results,
                "crossover_rows": crossover,
            }
        finally:
            stack.down(purge=True)


def _cpus() -> int:
    import os

    return os.cpu_count() or 1
