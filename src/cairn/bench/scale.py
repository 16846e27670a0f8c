"""Search latency against collection size, through cairn's own schema and search path.

One collection grows through *sizes*; at each size, every query is searched one at a time in each mode
the engine has: dense, keyword BM25 and hybrid on Milvus Lite 2.5, hybrid with both fusions (the default
weighted one, also with its engine searches one after another as `hybrid_in_turn`, and Milvus's RRF as
`hybrid_rrf`); dense only on the Milvus 2.3.5 server, which has no BM25. Rows look like cairn's: a
384-dimension vector (`cairn.bench.vectors`, clustered), ~120 words of text from a Zipf-distributed
vocabulary, location, metadata and an ACL.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cairn.bench.ingest import machine
from cairn.bench.vectors import DIM, make_vectors
from cairn.index.fusion import DEFAULT_FUSION, HybridFusion
from cairn.index.milvus import SEARCH_MODES, MilvusIndex, SearchMode

__all__ = ["bench_scale"]

_VOCABULARY = 5000


def _texts(count: int, seed: int, words: int = 120) -> list[str]:
    rng = np.random.default_rng(seed)
    ids = np.minimum(rng.zipf(1.2, size=(count, words)), _VOCABULARY)
    return [" ".join(f"w{w}" for w in row) for row in ids]


def _rows(lo: int, hi: int) -> list[dict[str, Any]]:
    vectors = make_vectors(hi - lo, seed=lo + 1)
    texts = _texts(hi - lo, seed=lo + 1)
    return [
        {
            "chunk_id": f"{lo + i:064x}",
            "text": texts[i],
            "dense": vectors[i].tolist(),
            "doc_id": f"{(lo + i) // 20:032x}",
            "source": f"/bench/doc-{(lo + i) // 20}.txt",
            "version": 1,
            "tenant": "default",
            "allowed": ["*"],
            "mime": "text/plain",
            "location": {"lines": [i, i + 10]},
            "metadata": {},
            "created_at": 0,
        }
        for i in range(hi - lo)
    ]


def bench_scale(
    sizes: Sequence[int],
    *,
    server: bool = False,
    queries: int = 100,
    dense_index: str = "FLAT",
    plot: Path | None = None,
) -> dict[str, Any]:
    """p50/p99 of each search mode at each collection size."""
    sizes = sorted(sizes)
    query_vectors = make_vectors(queries, seed=999_999)
    query_texts = [" ".join(t.split()[:3]) for t in _texts(queries, seed=424_242)]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cairn-bench-scale-") as home:
        stack = None
        if server:
            from cairn.stack import LocalStack

            stack = LocalStack(Path(home))
            exports = stack.up()
            index = MilvusIndex(
                exports["CAIRN_MILVUS_URI"], token=exports["CAIRN_MILVUS_TOKEN"], dense_index=dense_index
            )
        else:
            index = MilvusIndex(str(Path(home) / "milvus.db"), dense_index=dense_index)
        try:
            engine = f"{index.engine} {index.features.version}"
            index.ensure_collection("scale", DIM)
            name = index.engine_name("scale")
            # Hybrid three times where there is BM25: the default (weighted) fusion with its engine searches sent
            # at once, the same one after another, and Milvus's RRF, side by side. Each run: mode, fusion, at once.
            runs: dict[str, tuple[SearchMode, HybridFusion, bool]] = {
                m: (m, DEFAULT_FUSION, True) for m in SEARCH_MODES if index.features.bm25 or m == "dense"
            }
            if "hybrid" in runs:
                runs["hybrid_in_turn"] = ("hybrid", DEFAULT_FUSION, False)
                runs["hybrid_rrf"] = ("hybrid", HybridFusion("rrf"), True)
            modes = list(runs)
            probes = list(zip(query_texts, query_vectors, strict=True))
            have = 0
            for size in sizes:
                started = time.perf_counter()
                for lo in range(have, size, 5000):
                    index.client.insert(name, index.complete_rows("scale", _rows(lo, min(size, lo + 5000))))
                index.client.flush(name)
                insert_s = time.perf_counter() - started
                have = size
                entry: dict[str, Any] = {"size": size, "insert_s_since_last": round(insert_s, 2)}
                # Query by query, every run in turn, so that all see the same machine state (the first query
                # once untimed first: it warms up).
                seconds: dict[str, list[float]] = {label: [] for label in runs}
                for timed, (text, vector) in [(False, probes[0]), *((True, probe) for probe in probes)]:
                    for label, (mode, fusion, at_once) in runs.items():
                        index.concurrent_legs = at_once
                        began = time.perf_counter()
                        index.search("scale", mode=mode, k=10, fusion=fusion, query_text=text, query_vector=vector)
                        if timed:
                            seconds[label].append(time.perf_counter() - began)
                for label, taken in seconds.items():
                    p50, p99 = np.percentile(np.asarray(taken) * 1000, [50, 99])
                    entry[label] = {"p50_ms": round(float(p50), 2), "p99_ms": round(float(p99), 2)}
                results.append(entry)
            index.drop_collection("scale")
        finally:
            index.close()
            if stack is not None:
                stack.down(purge=True)
    result: dict[str, Any] = {
        "benchmark": "scale",
        "machine": machine(),
        "engine": engine,
        "dense_index": dense_index,
        "queries": queries,
        "k": 10,
        "results": results,
    }
    if plot is not None:
        from cairn.bench.plots import plot_lines

        series = {
            f"{mode} {q}": ([r["size"] for r in results], [r[mode][f"{q}_ms"] for r in results])
            for mode in modes
            for q in ("p50", "p99")
        }
        plot_lines(
            series,
            plot,
            title=f"search latency against collection size, {engine} ({dense_index})",
            xlabel="rows in the collection",
            ylabel="ms per query (one at a time)",
            logx=True,
            logy=True,
        )
        result["plot"] = str(plot)
    return result
