"""Hybrid search latency of the fusions, side by side on one ingest: `rrf` (in Milvus), `weighted_two_legs`
(dense and keyword searches fused in cairn), `weighted` (the default: those two and the headings leg, the
legs sent at once) and `weighted_in_turn` (the same searches one after another). Queries rotate through the
fusions, so all see the same machine state.

    python scripts/bench/fusion_latency.py tests/fixtures/eval/manpages --k 10 --rounds 3

Prints one JSON object: per fusion, p50/p95/mean milliseconds of `Cairn.search` (query vectors cached, so the
time is the engine's and the fusion's), and the p50 ratios of weighted to rrf, weighted_two_legs and
weighted_in_turn.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from cairn.bench.ingest import machine
from cairn.eval.dataset import load_dataset
from cairn.eval.runner import EvalSession
from cairn.settings import Settings

_WEIGHTED = {"hybrid_fusion": "weighted", "fusion_heading_weight": Settings().fusion_heading_weight}
# Each fusion: its settings, and whether the engine sends a weighted search's legs at once.
FUSIONS: dict[str, tuple[dict[str, Any], bool]] = {
    "rrf": ({"hybrid_fusion": "rrf"}, True),
    "weighted_two_legs": ({"hybrid_fusion": "weighted", "fusion_heading_weight": 0.0}, True),
    "weighted": (_WEIGHTED, True),
    "weighted_in_turn": (_WEIGHTED, False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--titled", action=argparse.BooleanOptionalAction, default=True, help="titles as headings")
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    times: dict[str, list[float]] = {fusion: [] for fusion in FUSIONS}
    with EvalSession(dataset, titled=args.titled) as session:
        ingest = session.ingest()
        queries = list(dataset.queries.values())
        for text in queries:  # warm the query-vector cache: the rounds time search, not embedding
            session.cairn.search(text, collection="eval", k=args.k, mode="dense")
        for _ in range(args.rounds):
            for text in queries:
                for fusion, (settings, at_once) in FUSIONS.items():
                    session.tune(**settings)
                    session.cairn.index.concurrent_legs = at_once
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
    p50 = {fusion: values["p50_ms"] for fusion, values in summary.items()}
    ratios = {
        "weighted_over_rrf_p50": round(p50["weighted"] / p50["rrf"], 2),
        "weighted_over_two_legs_p50": round(p50["weighted"] / p50["weighted_two_legs"], 2),
        "weighted_over_in_turn_p50": round(p50["weighted"] / p50["weighted_in_turn"], 2),
    }
    out = {"dataset": dataset.name, "titled": args.titled, "chunks": ingest["chunks"], "k": args.k}
    print(json.dumps({**out, "queries": len(times["rrf"]), **summary, **ratios, "machine": machine()}))


if __name__ == "__main__":
    main()
