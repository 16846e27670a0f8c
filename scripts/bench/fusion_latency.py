"""Hybrid search latency of the two fusions, side by side on one ingest: `rrf` (in Milvus) and `weighted` (two
searches fused in cairn). Queries alternate between the fusions, so both see the same machine state.

    python scripts/bench/fusion_latency.py tests/fixtures/eval/manpages --k 10 --rounds 3

Prints one JSON object: per fusion, p50/p95/mean milliseconds of `Cairn.search` (query vectors cached, so the
time is the engine's and the fusion's), and the ratio weighted / rrf.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from cairn.bench.ingest import machine
from cairn.eval.dataset import load_dataset
from cairn.eval.runner import EvalSession

FUSIONS = ("rrf", "weighted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    times: dict[str, list[float]] = {fusion: [] for fusion in FUSIONS}
    with EvalSession(dataset) as session:
        ingest = session.ingest()
        queries = list(dataset.queries.values())
        for text in queries:  # warm the query-vector cache: the rounds time search, not embedding
            session.cairn.search(text, collection="eval", k=args.k, mode="dense")
        for _ in range(args.rounds):
            for text in queries:
                for fusion in FUSIONS:
                    session.tune(hybrid_fusion=fusion)
                    started = time.perf_counter()
                    session.cairn.search(text, collection="eval", k=args.k, mode="hybrid")
                    times[fusion].append(1000 * (time.perf_counter() - started))
    summary = {
        fusion: {
            "p50_ms": round(statistics.median(values), 2),
            "p95_ms": round(statistics.quantiles(values, n=20)[18], 2),
            "mean_ms": round(statistics.fmean(values), 2),
        }
        for fusion, values in times.items()
    }
    ratio = round(summary["weighted"]["p50_ms"] / summary["rrf"]["p50_ms"], 2)
    out = {"dataset": dataset.name, "chunks": ingest["chunks"], "k": args.k, "queries": len(times["rrf"])}
    print(json.dumps({**out, **summary, "weighted_over_rrf_p50": ratio, "machine": machine()}))


if __name__ == "__main__":
    main()
