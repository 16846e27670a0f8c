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
  In a collection with a heading index, every candidate's headings (its document's title and its
  section path) are scored against the query by BM25, and ``heading_weight`` times that score over
  the candidates' best is added: words of the query in a title or a section name count for more
  than the same words in the body. The headings only re-rank what the two legs found; they add no
  candidates (docs/quality.md, "Headings").
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
    """How a hybrid search fuses its legs: the method and its parameters."""

    method: FusionMethod = "weighted"
    dense_weight: float = 0.8  # weighted: the dense leg's share of the score
    rrf_k: int = 5  # rrf: the rank constant
    heading_weight: float = 0.03  # weighted: the share added for a match in the chunk's headings


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
    headings: Mapping[str, float] | None = None,
    heading_weight: float = 0.0,
) -> list[dict[str, Any]]:
    """The best *limit* of the legs' Milvus hits, each with its fused score as ``distance``.

    Hits are Milvus's search results (``id``, ``distance``, ``entity``); *cosines* holds the cosine to
    the query of keyword hits the dense leg did not return, so their dense score is exact (one
    without counts as 0); *headings* the BM25 score of candidates' headings (title, section path)
    against the query, where they match. A hit scores ``dense_weight * dense + (1 - dense_weight) *
    keyword + heading_weight * headings``, each part over its best. Equal scores keep the dense
    leg's order, then the keyword leg's.
    """
    hits: dict[str, Mapping[str, Any]] = {}
    legs: tuple[dict[str, float], dict[str, float]] = ({}, {})
    for leg, leg_scores in zip((dense, keyword), legs, strict=True):
        for hit in leg:
            hits.setdefault(hit["id"], hit)
            leg_scores[hit["id"]] = float(hit["distance"])
    cosine = legs[0]
    for key in hits.keys() - cosine.keys():
        if key in cosines:
            cosine[key] = cosines[key]
    weights = (dense_weight, 1.0 - dense_weight, heading_weight)
    matched = {key: score for key, score in (headings or {}).items() if key in hits}
    parts = [_scaled(leg_scores) for leg_scores in (*legs, matched)]
    fused = {key: sum(w * part.get(key, 0.0) for w, part in zip(weights, parts, strict=True)) for key in hits}
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
