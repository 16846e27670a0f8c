"""Ranking metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from cairn.eval.metrics import QueryMetrics, aggregate_documents, collapse_to_documents, mean_metrics, score_ranking


def test_a_single_relevant_document_at_rank_one_scores_perfectly() -> None:
    """Rank 1 of the only relevant document: every metric is 1."""
    metrics = score_ranking(["a", "b", "c"], {"a": 1})
    assert metrics == QueryMetrics(ndcg_10=1.0, recall_10=1.0, recall_100=1.0, mrr_10=1.0)


def test_a_relevant_document_at_rank_three() -> None:
    """nDCG = 1/log2(4) = 0.5, MRR = 1/3, recall 1."""
    metrics = score_ranking(["x", "y", "a"], {"a": 1})
    assert metrics.ndcg_10 == pytest.approx(0.5)
    assert metrics.mrr_10 == pytest.approx(1 / 3)
    assert metrics.recall_10 == 1.0


def test_two_relevant_documents_one_found() -> None:
    """Relevant a (rank 2) and b (missing): DCG = 1/log2(3); IDCG = 1 + 1/log2(3); recall 1/2; MRR 1/2."""
    metrics = score_ranking(["x", "a", "y"], {"a": 1, "b": 1})
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert metrics.ndcg_10 == pytest.approx(expected)  # 0.3869
    assert metrics.recall_10 == 0.5
    assert metrics.mrr_10 == 0.5


def test_graded_relevance_uses_linear_gain() -> None:
    """Grades 2 and 1 found in reverse order: DCG = 1 + 2/log2(3); IDCG = 2 + 1/log2(3)."""
    metrics = score_ranking(["b", "a"], {"a": 2, "b": 1})
    assert metrics.ndcg_10 == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))


def test_cutoffs_ten_and_hundred() -> None:
    """A relevant document at rank 11 counts for recall@100 only; at rank 101 for nothing."""
    ranking = [f"d{i}" for i in range(1, 150)]
    at_11 = score_ranking(ranking, {"d11": 1})
    assert (at_11.ndcg_10, at_11.recall_10, at_11.recall_100, at_11.mrr_10) == (0.0, 0.0, 1.0, 0.0)
    at_101 = score_ranking(ranking, {"d101": 1})
    assert at_101.recall_100 == 0.0


def test_non_positive_grades_are_not_relevant() -> None:
    """A qrel with score 0 is judged non-relevant: finding it earns nothing."""
    assert score_ranking(["a", "b"], {"a": 0, "b": 1}).mrr_10 == 0.5


def test_chunks_collapse_to_their_documents_best_rank() -> None:
    """Chunk hits of docs a, b, a, c → ranking a, b, c."""
    assert collapse_to_documents(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]


def test_a_ranking_with_duplicates_is_refused() -> None:
    """Scoring uncollapsed chunk hits would double-count a document."""
    with pytest.raises(ValueError, match="collapse"):
        score_ranking(["a", "a"], {"a": 1})


def test_mean_over_queries() -> None:
    """The mean of a perfect query and a missed one is 0.5 for each metric; no queries → zeros."""
    perfect = score_ranking(["a"], {"a": 1})
    missed = score_ranking(["x"], {"a": 1})
    assert mean_metrics([perfect, missed]) == {"ndcg@10": 0.5, "recall@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5}
    assert mean_metrics([]) == {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}


def test_document_aggregation_adds_a_share_of_the_other_chunks() -> None:
    """Doc b (best 0.5, others 0.8) overtakes doc a (0.6 alone) at share 0.5 (0.9 > 0.6) but not at share 0.1
    (0.58 < 0.6); share 0 is the best-chunk ranking; equal scores keep best-chunk order."""
    scored = [("a", 0.6), ("b", 0.5), ("b", 0.4), ("c", 0.45), ("b", 0.4)]
    assert aggregate_documents(scored, 0.0) == collapse_to_documents(d for d, _ in scored) == ["a", "b", "c"]
    assert aggregate_documents(scored, 0.1) == ["a", "b", "c"]
    assert aggregate_documents(scored, 0.5) == ["b", "a", "c"]
    assert aggregate_documents([("x", 0.2), ("y", 0.2)], 0.3) == ["x", "y"]
