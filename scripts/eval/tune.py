"""Sweep the retrieval defaults on evaluation sets and print one JSON line per configuration.

Ingest-time settings (chunk size, overlap) need a fresh ingest each; search-time ones (RRF k) are
swept over one ingest. The numbers behind docs/quality.md come from here:

    python scripts/eval/tune.py tests/fixtures/eval/pydoc tests/fixtures/eval/manpages \\
        --chunks 256/32,128/16 --rrf 10,30,60,100
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cairn.eval.dataset import load_dataset
from cairn.eval.runner import EvalSession


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--chunks", default="256/32", help="MAX/OVERLAP token pairs, comma-separated")
    parser.add_argument("--rrf", default="60", help="RRF k values, comma-separated")
    parser.add_argument("--queries", type=int, default=None, help="only the first N queries")
    args = parser.parse_args()
    for root in args.datasets:
        dataset = load_dataset(root)
        if args.queries:
            dataset = dataset.subset(queries=args.queries)
        for pair in args.chunks.split(","):
            size, overlap = (int(v) for v in pair.split("/"))
            settings = {"chunk_max_tokens": size, "chunk_overlap_tokens": overlap}
            with EvalSession(dataset, settings=settings) as session:
                ingest = session.ingest()
                base = {"dataset": dataset.name, **settings, "chunks": ingest["chunks"], "ingest_s": ingest["seconds"]}
                for mode in ("keyword", "dense"):
                    print(json.dumps({**base, "mode": mode, **session.evaluate(mode)}), flush=True)
                for rrf_k in (int(v) for v in args.rrf.split(",")):
                    session.tune(rrf_k=rrf_k)
                    print(
                        json.dumps({**base, "mode": "hybrid", "rrf_k": rrf_k, **session.evaluate("hybrid")}), flush=True
                    )


if __name__ == "__main__":
    main()
