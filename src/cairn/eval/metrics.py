"""Document-level ranking metrics: nDCG@10, recall@10, recall@100 and MRR@10.

Implemented here rather than taken from a library: each is a few lines, and the definitions are
those of trec_eval as BEIR reports them (linear gain ``rel / log2(rank + 1)`` for nDCG; recall is
the share of a query's relevant documents found; a document is relevant when its qrel score is
positive). A search returns chunks; `collapse_to_documents` turns them into a document ranking in
which each document sits at the rank of its best chunk.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields

__all__ = [
    "METRIC_NAMES",
    "QueryMetrics",
    "aggregate_documents",
    "collapse_to_documents",
    "mean_metrics",
    "score_ranking",
]

METRIC_NAMES = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


@dataclass(frozen=True)
class QueryMetrics:
    """The metrics of one query's document ranking."""

    ndcg_10: float
    recall_10: float
    recall_100: float
    mrr_10: float

    def as_dict(self) -> dict[str, float]:
        return dict(zip(METRIC_NAMES, (getattr(self, f.name) for f in fields(self)), strict=True))


def collapse_to_documents(doc_ids: Iterable[str]) -> list[str]:
    """Documents in order of their first (best-ranked) chunk; later chunks of a document are dropped."""
    return list(dict.fromkeys(doc_ids))


def aggregate_documents(scored: Iterable[tuple[str, float]], share: float) -> list[str]:
    """Documents ranked by their best chunk's score plus *share* times the sum of their other
    chunks' scores (*scored*: (document, chunk score), best chunk first). ``share=0`` is
    `collapse_to_documents`; ties keep the order of each document's best chunk."""
    best: dict[str, float] = {}
    rest: dict[str, float] = {}
    for doc, score in scored:
        if doc in best:
            rest[doc] += score
        else:
            best[doc], rest[doc] = score, 0.0
    order = {doc: position for position, doc in enumerate(best)}
    return sorted(best, key=lambda doc: (-(best[doc] + share * rest[doc]), order[doc]))


def _dcg(gains: Sequence[float]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))


def ndcg_at(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    ideal = _dcg(sorted((g for g in qrels.values() if g > 0), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return _dcg([max(qrels.get(doc, 0), 0) for doc in ranking[:k]]) / ideal


def recall_at(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    relevant = {doc for doc, grade in qrels.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def mrr_at(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    for rank, doc in enumerate(ranking[:k], start=1):
        if qrels.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def score_ranking(ranking: Sequence[str], qrels: Mapping[str, int]) -> QueryMetrics:
    """The metrics of one document *ranking* (best first, no duplicates) against a query's *qrels*."""
    if len(set(ranking)) != len(ranking):
        raise ValueError("a document ranking may name each document once; collapse chunk hits first")
    return QueryMetrics(
        ndcg_10=ndcg_at(ranking, qrels, 10),
        recall_10=recall_at(ranking, qrels, 10),
        recall_100=recall_at(ranking, qrels, 100),
        mrr_10=mrr_at(ranking, qrels, 10),
    )


def mean_metrics(per_query: Sequence[QueryMetrics]) -> dict[str, float]:
    """The mean of each metric over queries (0.0 for each when there are none)."""
    if not per_query:
        return dict.fromkeys(METRIC_NAMES, 0.0)
    totals = [m.as_dict() for m in per_query]
    return {name: sum(t[name] for t in totals) / len(totals) for name in METRIC_NAMES}
