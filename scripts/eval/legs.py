"""Ingest evaluation sets once and save each query's two search legs, for fusion studies offline.

Search-time choices (how the dense and keyword lists are fused, how chunks become documents) can be
compared on one ingest without the run-to-run spread between ingests: this script records, per
query, the dense and the keyword chunk lists (document id, chunk id, score) from `Cairn.search`,
and the fused hybrid ranking cairn itself returned, so `scripts/eval/fuse.py` can replay any
fusion over them and check that it reproduces cairn's own.

    python scripts/eval/legs.py tests/fixtures/eval/{pydoc,manpages,faqquestions} --out /tmp/legs/base
    python scripts/eval/legs.py tests/fixtures/eval/pydoc --set bm25_analyzer=english --out /tmp/legs/english
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cairn.eval.dataset import half_of, load_dataset
from cairn.eval.metrics import collapse_to_documents
from cairn.eval.runner import EvalSession

_COLLECTION = "eval"


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def legs_of(session: EvalSession, query: str, depth: int) -> dict[str, Any]:
    by_source = session.doc_ids
    out: dict[str, Any] = {}
    for mode in ("dense", "keyword", "hybrid"):
        result = session.cairn.search(query, collection=_COLLECTION, k=depth, mode=mode)  # type: ignore[arg-type]
        hits = [h for h in result.hits if h.source in by_source]
        if mode == "hybrid":
            out["hybrid_docs"] = collapse_to_documents(by_source[h.source] for h in hits)
        else:
            out[mode] = [[by_source[h.source], h.chunk_id, round(float(h.score), 6)] for h in hits]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--set", action="append", default=[], help="an ingest setting NAME=VALUE (repeatable)")
    parser.add_argument(
        "--titled",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="JSONL documents as Markdown, the title a heading (the default), or plain text, the title a first line",
    )
    parser.add_argument("--depth", type=int, default=100, help="chunks per leg")
    parser.add_argument("--out", type=Path, required=True, help="a folder: one DATASET.json per set")
    args = parser.parse_args()
    settings = {name: _value(value) for name, value in (item.split("=", 1) for item in args.set)}
    args.out.mkdir(parents=True, exist_ok=True)
    for root in args.datasets:
        dataset = load_dataset(root)
        with EvalSession(dataset, settings=settings, titled=args.titled) as session:
            ingest = session.ingest()
            queries = {
                query_id: {
                    "half": half_of(query_id),
                    "qrels": dataset.qrels[query_id],
                    **legs_of(session, text, args.depth),
                }
                for query_id, text in dataset.queries.items()
            }
        record = {"dataset": dataset.name, "settings": settings, "titled": args.titled, "ingest": ingest}
        (args.out / f"{dataset.name}.json").write_text(json.dumps({**record, "queries": queries}), encoding="utf-8")
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
