"""Sweep the retrieval defaults on evaluation sets and print one JSON line per configuration.

Ingest-time settings (chunk size, overlap) need a fresh ingest each; search-time ones (RRF k,
exact-phrase promotion) are swept over one ingest. The sweeps behind docs/quality.md:

    python scripts/eval/tune.py tests/fixtures/eval/pydoc tests/fixtures/eval/manpages \\
        --chunks 256/32 --modes hybrid --rrf 5,60 --promotion on,off --out docs/quality/tune-rrf.jsonl
    python scripts/eval/tune.py tests/fixtures/eval/pydoc tests/fixtures/eval/manpages \\
        --chunks 128/16,192/24 --rrf 5 --promotion on,off --out docs/quality/tune-chunks-promotion.jsonl

(tune-chunks-promotion.jsonl also holds a first 256/32 hybrid-only run with --rrf 5.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cairn.eval.dataset import load_dataset
from cairn.eval.runner import EvalSession

_SWITCH = {"on": True, "off": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--chunks", default="256/32", help="MAX/OVERLAP token pairs, comma-separated")
    parser.add_argument("--rrf", default="5", help="RRF k values, comma-separated")
    parser.add_argument("--promotion", default="on", help="exact-phrase promotion: on, off or on,off")
    parser.add_argument("--modes", default="keyword,dense,hybrid", help="modes to score, comma-separated")
    parser.add_argument("--queries", type=int, default=None, help="only the first N queries")
    parser.add_argument("--out", type=Path, default=None, help="also append the JSON lines to this file")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    promotions = [_SWITCH[v.strip()] for v in args.promotion.split(",")]

    def emit(row: dict[str, Any]) -> None:
        line = json.dumps(row)
        print(line, flush=True)
        if args.out is not None:
            with args.out.open("a", encoding="utf-8") as out:
                out.write(line + "\n")

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
                for mode in (m for m in modes if m in ("keyword", "dense")):
                    emit({**base, "mode": mode, **session.evaluate(mode)})
                if "hybrid" not in modes:
                    continue
                for rrf_k in (int(v) for v in args.rrf.split(",")):
                    for promotion in promotions:
                        session.tune(rrf_k=rrf_k, exact_phrase_promotion=promotion)
                        swept = {"rrf_k": rrf_k, "exact_phrase_promotion": promotion}
                        emit({**base, "mode": "hybrid", **swept, **session.evaluate("hybrid")})


if __name__ == "__main__":
    main()
