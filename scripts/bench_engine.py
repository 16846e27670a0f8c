"""Measure a Milvus Lite line: insert time and search p50/p99 for dense, BM25 and hybrid.

Runs with nothing but pymilvus, milvus-lite and numpy, so the same script can be pointed at
different Milvus Lite lines installed in separate virtual environments:

    python scripts/bench_engine.py --rows 10000 100000 --out docs/benchmarks/engine-3.2.2.json

Vectors are synthetic (random unit vectors, 384 dims); texts are drawn from a fixed vocabulary
so that BM25 has realistic term statistics.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
from pymilvus import AnnSearchRequest, DataType, Function, FunctionType, MilvusClient, RRFRanker

DIM = 384


def _schema(client: MilvusClient):  # type: ignore[no-untyped-def]
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("text", DataType.VARCHAR, max_length=4096, enable_analyzer=True)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name="bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]
        )
    )
    return schema


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(rows: int, queries: int, index: str) -> dict[str, object]:
    rng = np.random.default_rng(7)
    vocab = [f"w{i}" for i in range(5000)]
    with tempfile.TemporaryDirectory() as tmp:
        client = MilvusClient(str(Path(tmp) / "bench.db"))
        params = client.prepare_index_params()
        params.add_index("dense", index_type=index, metric_type="IP")
        params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection("bench", schema=_schema(client), index_params=params)
        started = time.perf_counter()
        batch = 2000
        stored = np.empty((rows, DIM), dtype=np.float32)
        for lo in range(0, rows, batch):
            n = min(batch, rows - lo)
            vecs = rng.standard_normal((n, DIM)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            stored[lo : lo + n] = vecs
            words = rng.zipf(1.3, size=(n, 60)) % len(vocab)
            client.insert(
                "bench",
                [
                    {"id": f"r{lo + i}", "text": " ".join(vocab[w] for w in words[i]), "dense": vecs[i].tolist()}
                    for i in range(n)
                ],
            )
        insert_s = time.perf_counter() - started
        client.load_collection("bench")
        qv = rng.standard_normal((queries, DIM)).astype(np.float32)
        qv /= np.linalg.norm(qv, axis=1, keepdims=True)
        qt = [" ".join(vocab[w] for w in rng.integers(0, 200, 4)) for _ in range(queries)]
        timings: dict[str, list[float]] = {"dense": [], "keyword": [], "hybrid": []}
        found = 0
        for i in range(queries):
            t = time.perf_counter()
            dense = client.search(
                "bench",
                data=[qv[i].tolist()],
                anns_field="dense",
                limit=10,
                search_params={"metric_type": "IP"},
                output_fields=["text"],
            )
            timings["dense"].append(time.perf_counter() - t)
            exact = {f"r{j}" for j in np.argsort(-(stored @ qv[i]))[:10]}
            found += len(exact & {hit["id"] for hit in dense[0]})
            t = time.perf_counter()
            client.search(
                "bench",
                data=[qt[i]],
                anns_field="sparse",
                limit=10,
                search_params={"metric_type": "BM25"},
                output_fields=["text"],
            )
            timings["keyword"].append(time.perf_counter() - t)
            t = time.perf_counter()
            client.hybrid_search(
                "bench",
                reqs=[
                    AnnSearchRequest([qv[i].tolist()], "dense", {"metric_type": "IP"}, 40),
                    AnnSearchRequest([qt[i]], "sparse", {"metric_type": "BM25"}, 40),
                ],
                ranker=RRFRanker(60),
                limit=10,
                output_fields=["text"],
            )
            timings["hybrid"].append(time.perf_counter() - t)
        client.close()
    return {
        "rows": rows,
        "index": index,
        "insert_s": round(insert_s, 2),
        "insert_rows_per_s": round(rows / insert_s, 1),
        "dense_recall_at_10": round(found / (10 * queries), 3),
        **{f"{mode}_p50_ms": round(statistics.median(v) * 1000, 2) for mode, v in timings.items()},
        **{f"{mode}_p99_ms": round(_percentile(v, 0.99) * 1000, 2) for mode, v in timings.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--index", default="AUTOINDEX")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report = {
        "milvus_lite": version("milvus-lite"),
        "pymilvus": version("pymilvus"),
        "machine": f"{platform.machine()} {platform.processor() or ''} cpus={__import__('os').cpu_count()}",
        "results": [run(n, args.queries, args.index) for n in args.rows],
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
