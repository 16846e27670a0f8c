"""Replay fusion functions over the search legs saved by `scripts/eval/legs.py`, offline.

Every row is scored on the same ingest, so differences between rows are the fusion's alone, free of
the spread between ingests. First it checks that its own RRF reproduces the hybrid ranking cairn
returned (the share of queries whose top 10 documents agree), then prints one JSON line per fusion:
hybrid nDCG@10 per set and half, and the change against RRF k=5 (today's default).

    python scripts/eval/fuse.py /tmp/legs/base
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cairn.eval.metrics import mean_metrics, score_ranking

Leg = list[list[Any]]  # [document id, chunk id, score], best first
Fusion = Callable[[Leg, Leg], dict[str, tuple[str, float]]]  # chunk id -> (document id, fused score)


def rrf(k: float, dense_weight: float = 0.5) -> Fusion:
    def fuse(dense: Leg, keyword: Leg) -> dict[str, tuple[str, float]]:
        scores: dict[str, tuple[str, float]] = {}
        for weight, leg in ((2 * dense_weight, dense), (2 * (1 - dense_weight), keyword)):
            for rank, (doc, chunk, _) in enumerate(leg, start=1):
                scores[chunk] = (doc, scores.get(chunk, (doc, 0.0))[1] + weight / (k + rank))
        return scores

    return fuse


def _minmax(leg: Leg, floor: float | None) -> dict[str, float]:
    if not leg:
        return {}
    if floor == -1.0:  # the raw score (cosine)
        return {row[1]: row[2] for row in leg}
    values = [row[2] for row in leg]
    low = min(values) if floor is None else floor
    span = (max(values) - low) or 1.0
    return {row[1]: (row[2] - low) / span for row in leg}


def convex(alpha: float, dense_floor: float | None, keyword_floor: float | None, guard: int = 0) -> Fusion:
    """alpha * dense + (1 - alpha) * keyword over min-max normalised scores (a missing chunk scores 0).

    A floor of 0 divides a leg's scores by its best one (cosine and BM25 are 0 for nothing in
    common); None uses the list's own minimum instead.
    """

    def fuse(dense: Leg, keyword: Leg) -> dict[str, tuple[str, float]]:
        d = _minmax(dense, dense_floor)
        s = _minmax(keyword, keyword_floor)
        docs = {row[1]: row[0] for row in [*dense, *keyword]}
        fused = {chunk: alpha * d.get(chunk, 0.0) + (1 - alpha) * s.get(chunk, 0.0) for chunk in docs}
        if guard and keyword:
            # The keyword leg's best chunk ranks no lower than `guard`.
            top = keyword[0][1]
            ranked = sorted(fused.values(), reverse=True)
            if len(ranked) >= guard:
                fused[top] = max(fused[top], ranked[guard - 1] + 1e-9)
        return {chunk: (doc, fused[chunk]) for chunk, doc in docs.items()}
        return {
            chunk: (doc, alpha * d.get(chunk, 0.0) + (1 - alpha) * s.get(chunk, 0.0)) for chunk, doc in docs.items()
        }

    return fuse


def documents(scored: dict[str, tuple[str, float]], share: float) -> list[str]:
    per_doc: dict[str, list[float]] = defaultdict(list)
    for doc, score in scored.values():
        per_doc[doc].append(score)
    total = {doc: max(s) + share * (sum(s) - max(s)) for doc, s in per_doc.items()}
    return sorted(total, key=lambda doc: -total[doc])


def score(queries: dict[str, Any], fusion: Fusion, share: float, half: str) -> float:
    per_query = [
        score_ranking(documents(fusion(q["dense"], q["keyword"]), share), q["qrels"])
        for q in queries.values()
        if q["half"] == half
    ]
    return round(mean_metrics(per_query)["ndcg@10"], 4)


def fusions() -> Iterable[tuple[dict[str, Any], Fusion]]:
    for k in (5, 10, 20, 60):
        for w in (0.3, 0.4, 0.5, 0.6, 0.7):
            yield {"fusion": "rrf", "k": k, "dense_weight": w}, rrf(k, w)
    for floors in ((None, None), (0.0, 0.0), (None, 0.0), (0.0, None), (-1.0, 0.0)):
        for alpha in (0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
            for guard in (0, 1, 2, 3, 5):
                params = {"fusion": "convex", "floors": floors, "alpha": alpha, "guard": guard}
                yield params, convex(alpha, *floors, guard)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--share", default="0,0.1", help="document aggregation shares, comma-separated")
    args = parser.parse_args()
    sets = {p.stem: json.loads(p.read_text(encoding="utf-8"))["queries"] for p in sorted(args.folder.glob("*.json"))}
    reference = rrf(5)
    weighted = convex(0.8, 0.0, 0.0, guard=3)
    for name, queries in sets.items():
        # cairn's own hybrid ranking came from the fusion the ingest's settings chose (weighted by default).
        for label, fusion in (("rrf5", reference), ("weighted0.8", weighted)):
            agree = sum(
                documents(fusion(q["dense"], q["keyword"]), 0)[:10] == q["hybrid_docs"][:10] for q in queries.values()
            )
            print(json.dumps({"check": name, f"{label}_reproduces_top10": round(agree / len(queries), 3)}))
    baseline = {(n, h): score(qs, reference, 0.0, h) for n, qs in sets.items() for h in ("tune", "held-out")}
    print(json.dumps({"baseline": {f"{n}/{h}": v for (n, h), v in baseline.items()}}))
    for share in (float(v) for v in args.share.split(",")):
        for params, fusion in fusions():
            row = {f"{n}/{h}": score(qs, fusion, share, h) for n, qs in sets.items() for h in ("tune", "held-out")}
            tune_gain = min(row[f"{n}/tune"] - baseline[(n, "tune")] for n in sets)
            print(json.dumps({**params, "share": share, "min_tune_gain": round(tune_gain, 4), **row}), flush=True)


if __name__ == "__main__":
    main()
