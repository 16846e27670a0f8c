"""ANN recall@10 against exact search, by collection size, index type and search parameter.

For each size the vectors (`cairn.bench.vectors`) are inserted once; each index is then built on them
in turn (release, drop the old index, create, load), and every query is searched once per search
parameter, one query at a time. Recall@10 is the share of the exact top 10 (NumPy brute force) that
the engine returned. On Milvus Lite 2.5 only FLAT, IVF_FLAT and AUTOINDEX exist; the server stack
(``server``: a Milvus 2.3.5 standalone on SeaweedFS, started for the run) adds HNSW and IVF_SQ8.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from cairn.bench.ingest import machine
from cairn.bench.vectors import DIM, exact_top_k, make_vectors

__all__ = ["bench_recall", "engine_client"]

K = 10
NPROBES = (1, 4, 16, 64)
EFS = (16, 32, 64, 128, 256)


def _sweeps(server: bool, size: int) -> list[tuple[str, dict[str, Any], str, list[dict[str, Any]]]]:
    """(index type, build params, search-parameter name, search params to sweep)."""
    nlist = int(min(4096, max(16, 4 * np.sqrt(size))))
    ivf = [{"nprobe": p} for p in NPROBES if p <= nlist]
    sweeps: list[tuple[str, dict[str, Any], str, list[dict[str, Any]]]] = [
        ("FLAT", {}, "-", [{}]),
        ("IVF_FLAT", {"nlist": nlist}, "nprobe", ivf),
    ]
    if server:
        sweeps.append(("IVF_SQ8", {"nlist": nlist}, "nprobe", ivf))
        sweeps.append(("HNSW", {"M": 16, "efConstruction": 200}, "ef", [{"ef": ef} for ef in EFS]))
    else:
        sweeps.append(("AUTOINDEX", {}, "-", [{}]))
    return sweeps


@contextmanager
def engine_client(server: bool, home: Path) -> Iterator[tuple[Any, str]]:
    """A ``MilvusClient`` on Milvus Lite under *home*, or on a `LocalStack` started there; and the engine's name."""
    from pymilvus import MilvusClient

    if not server:
        client = MilvusClient(str(home / "bench.db"))
        try:
            yield client, "milvus-lite " + _lite_version()
        finally:
            client.close()
        return
    from cairn.stack import LocalStack

    stack = LocalStack(home)
    exports = stack.up()
    try:
        client = MilvusClient(exports["CAIRN_MILVUS_URI"], token=exports["CAIRN_MILVUS_TOKEN"])
        try:
            yield client, f"milvus-server {client.get_server_version()} on SeaweedFS S3 (cairn stack, loopback)"
        finally:
            client.close()
    finally:
        stack.down(purge=True)


def _lite_version() -> str:
    from importlib.metadata import version

    return version("milvus-lite")


def fill(client: Any, name: str, data: np.ndarray[Any, Any]) -> float:
    """Create collection *name* (id, vector) and insert *data*; seconds taken."""
    from pymilvus import DataType

    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=data.shape[1])
    client.create_collection(name, schema=schema)
    started = time.perf_counter()
    for lo in range(0, len(data), 5000):
        block = data[lo : lo + 5000]
        client.insert(name, [{"id": lo + i, "vector": row.tolist()} for i, row in enumerate(block)])
    client.flush(name)
    return time.perf_counter() - started


def build_index(client: Any, name: str, index_type: str, params: dict[str, Any]) -> float:
    """Replace the vector index of *name* and load it; seconds taken."""
    client.release_collection(name)
    for existing in client.list_indexes(name):
        client.drop_index(name, existing)
    started = time.perf_counter()
    index_params = client.prepare_index_params()
    index_params.add_index("vector", index_type=index_type, metric_type="IP", params=params)
    client.create_index(name, index_params)
    client.load_collection(name)
    return time.perf_counter() - started


def search_all(
    client: Any, name: str, queries: np.ndarray[Any, Any], params: dict[str, Any]
) -> tuple[list[list[int]], list[float]]:
    """Top 10 ids of each query, searched one at a time, and each search's seconds."""
    found: list[list[int]] = []
    seconds: list[float] = []
    for query in queries:
        started = time.perf_counter()
        result = client.search(
            name,
            data=[query.tolist()],
            anns_field="vector",
            limit=K,
            search_params={"metric_type": "IP", "params": params},
        )
        seconds.append(time.perf_counter() - started)
        found.append([int(hit["id"]) for hit in result[0]])
    return found, seconds


def bench_recall(
    sizes: Sequence[int],
    *,
    server: bool = False,
    queries: int = 200,
    kind: str = "clustered",
    plot: Path | None = None,
    indexes: Sequence[str] = (),
) -> dict[str, Any]:
    """Recall@10 and search latency of each index and search parameter at each size (``indexes``: only those)."""
    wanted = {name.upper() for name in indexes}
    query_vectors = make_vectors(queries, kind=kind, seed=999_999)
    runs: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="cairn-bench-recall-") as home,
        engine_client(server, Path(home)) as (
            client,
            engine,
        ),
    ):
        for size in sizes:
            data = make_vectors(size, kind=kind, seed=size)
            truth = exact_top_k(data, query_vectors, K)
            name = f"recall_{size}"
            insert_s = fill(client, name, data)
            for index_type, build_params, knob, sweep in _sweeps(server, size):
                if wanted and index_type not in wanted:
                    continue
                try:
                    build_s = build_index(client, name, index_type, build_params)
                except Exception as exc:
                    runs.append({"size": size, "index": index_type, "error": str(exc).splitlines()[0][:200]})
                    continue
                for params in sweep:
                    found, seconds = search_all(client, name, query_vectors, params)
                    recall = np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth, strict=True)])
                    p50, p99 = np.percentile(np.asarray(seconds) * 1000, [50, 99])
                    runs.append(
                        {
                            "size": size,
                            "index": index_type,
                            "build_params": build_params,
                            "search_param": knob,
                            "search_value": params.get(knob) if knob != "-" else None,
                            "recall_at_10": round(float(recall), 4),
                            "search_p50_ms": round(float(p50), 2),
                            "search_p99_ms": round(float(p99), 2),
                            "build_s": round(build_s, 2),
                            "insert_s": round(insert_s, 2),
                        }
                    )
            client.drop_collection(name)
    result: dict[str, Any] = {
        "benchmark": "recall",
        "machine": machine(),
        "engine": engine,
        "vectors": kind,
        "dim": DIM,
        "queries": queries,
        "k": K,
        "sizes": list(sizes),
        "runs": runs,
    }
    if plot is not None:
        from cairn.bench.plots import plot_lines

        series: dict[str, tuple[list[float], list[float]]] = {}
        for run in runs:
            if "recall_at_10" not in run:
                continue
            label = f"{run['index']} @ {run['size']:,}"
            xs, ys = series.setdefault(label, ([], []))
            xs.append(run["search_p50_ms"])
            ys.append(run["recall_at_10"])
        plot_lines(
            series,
            plot,
            title=f"recall@10 against p50, {engine.split(' on ')[0]}, {kind} vectors",
            xlabel="search p50, ms (one query at a time)",
            ylabel="recall@10",
            logx=True,
        )
        result["plot"] = str(plot)
    return result
