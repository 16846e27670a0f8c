"""Hybrid fusion: one ranking from a query's dense and keyword lists.

Two ways, chosen by `Settings.hybrid_fusion`:

- ``weighted`` (the default): every candidate's score is ``w * dense + (1 - w) * keyword``, each
  leg's score divided by that leg's best score for the query, so both lie in [0, 1] whatever the
  scale of BM25 or cosine. A candidate that only the keyword leg found gets its real cosine to the
  query (Milvus scores it in a dense search restricted to such hits), so a rare term the model knows nothing of
  still counts on both sides; one only the dense leg found has no keyword score (0). The keyword
  leg's best hit is kept among the first three: a strong exact match (a code, a name, a remembered
  phrase) is not drowned by passages that are merely on topic. Measured on three evaluation sets
  against RRF (docs/quality.md, "Fusion"): better on all three tune halves.
- ``rrf``: reciprocal rank fusion, run by Milvus (`RRFRanker`), which uses ranks only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["DEFAULT_FUSION", "HybridFusion", "weighted_fusion"]

FusionMethod = Literal["weighted", "rrf"]  # as `Settings.hybrid_fusion`


@dataclass(frozen=True)
class HybridFusion:
    """How a hybrid search fuses its legs: the method and its one parameter."""

    method: FusionMethod = "weighted"
    dense_weight: float = 0.8  # weighted: the dense leg's share of the score
    rrf_k: int = 5  # rrf: the rank constant


DEFAULT_FUSION = HybridFusion()
# Weighted fusion keeps the keyword leg's best hit among the first this many.
KEYWORD_GUARD = 3


def _scaled(scores: Mapping[str, float]) -> dict[str, float]:
    """Each score over the best one, negatives as 0: the leg's best candidate scores 1."""
    best = max(scores.values(), default=0.0)
    if best <= 0.0:
        return dict.fromkeys(scores, 0.0)
    return {key: max(value, 0.0) / best for key, value in scores.items()}


def weighted_fusion(
    dense: Sequence[Mapping[str, Any]],
    keyword: Sequence[Mapping[str, Any]],
    dense_weight: float,
    limit: int,
    cosines: Mapping[str, float],
) -> list[dict[str, Any]]:
    """The best *limit* of both legs' Milvus hits, each with its fused score as ``distance``.

    Hits are Milvus's search results (``id``, ``distance``, ``entity``); *cosines* holds the cosine to
    the query of keyword hits the dense leg did not return, so their dense score is exact (one
    without counts as 0). Equal scores keep the dense leg's order, then the keyword leg's.
    """
    hits: dict[str, Mapping[str, Any]] = {}
    cosine: dict[str, float] = {}
    bm25: dict[str, float] = {}
    for hit in dense:
        hits.setdefault(hit["id"], hit)
        cosine[hit["id"]] = float(hit["distance"])
    for hit in keyword:
        hits.setdefault(hit["id"], hit)
        bm25[hit["id"]] = float(hit["distance"])
        if hit["id"] not in cosine and hit["id"] in cosines:
            cosine[hit["id"]] = cosines[hit["id"]]
    dense_part, keyword_part = _scaled(cosine), _scaled(bm25)
    fused = {
        key: dense_weight * dense_part.get(key, 0.0) + (1.0 - dense_weight) * keyword_part.get(key, 0.0) for key in hits
    }
    order = sorted(hits, key=lambda key: -fused[key])
    if keyword and (top := keyword[0]["id"]) not in order[:KEYWORD_GUARD]:
        # The keyword leg's best match (an exact code, name or phrase the model does not know) always shows.
        order.remove(top)
        order.insert(KEYWORD_GUARD - 1, top)
    order = order[:limit]
    scores = [fused[key] for key in order]
    for at in range(len(scores) - 2, -1, -1):  # a guarded hit scores as the one it moved above: scores never rise
        scores[at] = max(scores[at], scores[at + 1])
    return [{**hits[key], "distance": score} for key, score in zip(order, scores, strict=True)]
