"""Sweep the retrieval defaults on evaluation sets and print one JSON line per configuration.

Ingest-time settings (chunk size, overlap) need a fresh ingest each; search-time ones (RRF k,
exact-phrase promotion) are swept over one ingest. The sweeps behind docs/quality.md:

    python scripts/eval/tune.py tests/fixtures/eval/pydoc tests/fixtures/eval/manpages \\
        --chunks 256/32 --modes hybrid --rrf 5,60 --promotion on,off --out docs/quality/tune-rrf.jsonl
    python scripts/eval/tune.py tests/fixtures/eval/pydoc tests/fixtures/eval/manpages \\
        --chunks 128/16,192/24 --rrf 5 --promotion on,off --out docs/quality/tune-chunks-promotion.jsonl

(tune-chunks-promotion.jsonl also holds a first 256/32 hybrid-only run with --rrf 5.)

With ``--halves`` every row is scored twice, on the ``tune`` and on the ``held-out`` half of the
queries (one ingest); ``--share`` sweeps document-level aggregation (a document's score is its best
chunk's plus that share of its other chunks'). The issue-19 sweeps (docs/quality.md):

    python scripts/eval/tune.py tests/fixtures/eval/{pydoc,manpages,faqquestions} --halves \
        --rrf 5,10,20 --promotion off --share 0,0.1,0.3 --out docs/quality/halves-baseline.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cairn.eval.dataset import HALVES, load_dataset
from cairn.eval.runner import EvalSession

_SWITCH = {"on": True, "off": False}


def retune_bm25(session: EvalSession, k1: float, b: float) -> None:
    """Rebuild the keyword index of the session's scratch collection with BM25 *k1* and *b*.

    The sparse vectors hold term frequencies; k1 and b are applied by the index, so a new index over
    the same rows scores with the new values and nothing is re-embedded. A measurement shortcut for
    this script only: cairn itself applies `Settings.bm25_k1`/`bm25_b` when it creates a collection.
    """
    client = session.cairn.index.client
    client = getattr(client, "raw", client)  # a server connection is wrapped with timeouts
    (name,) = client.list_collections()
    client.release_collection(name)
    client.drop_index(name, "sparse")
    params = client.prepare_index_params()
    params.add_index(
        "sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params={"bm25_k1": k1, "bm25_b": b}
    )
    client.create_index(name, params)
    client.load_collection(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--chunks", default="256/32", help="MAX/OVERLAP token pairs, comma-separated")
    parser.add_argument("--rrf", default="5", help="RRF k values, comma-separated")
    parser.add_argument("--promotion", default="on", help="exact-phrase promotion: on, off or on,off")
    parser.add_argument("--modes", default="keyword,dense,hybrid", help="modes to score, comma-separated")
    parser.add_argument("--halves", action="store_true", help="score the tune and held-out halves separately")
    parser.add_argument("--share", default="0", help="document aggregation shares, comma-separated")
    parser.add_argument(
        "--titled",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="JSONL documents as Markdown, the title a heading (the default), or plain text, the title a first line",
    )
    parser.add_argument("--heading-context", action="store_true", help="embed chunks with their heading path")
    parser.add_argument(
        "--fusion", default="", help="weighted fusions to score too: weighted=DENSE[/HEADINGS], e.g. weighted=0.8/0.05"
    )
    parser.add_argument("--bm25", default="", help="BM25 K1/B pairs to sweep on the same ingest, e.g. 1.2/0.75,1.5/0.5")
    parser.add_argument("--queries", type=int, default=None, help="only the first N queries")
    parser.add_argument("--out", type=Path, default=None, help="also append the JSON lines to this file")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    promotions = [_SWITCH[v.strip()] for v in args.promotion.split(",")]
    shares = [float(v) for v in args.share.split(",")]
    rrf_values = [int(v) for v in args.rrf.split(",")]
    halves: list[str | None] = list(HALVES) if args.halves else [None]

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
            settings: dict[str, Any] = {"chunk_max_tokens": size, "chunk_overlap_tokens": overlap}
            if args.heading_context:
                settings["embed_heading_context"] = True
            with EvalSession(dataset, settings=settings, titled=args.titled) as session:
                ingest = session.ingest()
                base = {"dataset": dataset.name, **settings, "titled": args.titled}
                base |= {"chunks": ingest["chunks"], "ingest_s": ingest["seconds"]}
                for mode in (m for m in modes if m in ("keyword", "dense")):
                    for half in halves:
                        emit({**base, "mode": mode, "half": half or "all", **session.evaluate(mode, half=half)})
                for pair in (p for p in args.bm25.split(",") if p.strip()):
                    k1, b = (float(v) for v in pair.split("/"))
                    retune_bm25(session, k1, b)
                    tuned = {**base, "bm25_k1": k1, "bm25_b": b, "rrf_k": rrf_values[0], "document_share": 0.0}
                    session.tune(hybrid_fusion="rrf", rrf_k=rrf_values[0], exact_phrase_promotion=promotions[0])
                    for mode in ("keyword", "hybrid"):
                        for half in halves:
                            emit({**tuned, "mode": mode, "half": half or "all", **session.evaluate(mode, half=half)})
                if args.bm25:
                    continue
                if "hybrid" not in modes:
                    continue
                for fusion in (f for f in args.fusion.split(",") if f.strip()):
                    # weighted=W[/H]: weighted fusion with dense weight W (and headings weight H, default 0),
                    # on the same ingest as the RRF rows.
                    weight, _, heading = fusion.split("=")[1].partition("/")
                    search = {
                        "hybrid_fusion": "weighted",
                        "fusion_dense_weight": float(weight),
                        "fusion_heading_weight": float(heading or 0),
                    }
                    session.tune(**search, exact_phrase_promotion=False)
                    swept = {**search, "document_share": 0.0}
                    session.document_share = 0.0
                    for half in halves:
                        scored = session.evaluate("hybrid", half=half)
                        emit({**base, "mode": "hybrid", "half": half or "all", **swept, **scored})
                for rrf_k in (int(v) for v in args.rrf.split(",")):
                    for promotion in promotions:
                        session.tune(hybrid_fusion="rrf", rrf_k=rrf_k, exact_phrase_promotion=promotion)
                        for share in shares:
                            session.document_share = share
                            swept = {"hybrid_fusion": "rrf", "rrf_k": rrf_k, "exact_phrase_promotion": promotion}
                            swept["document_share"] = share
                            for half in halves:
                                scored = session.evaluate("hybrid", half=half)
                                emit({**base, "mode": "hybrid", "half": half or "all", **swept, **scored})


if __name__ == "__main__":
    main()
