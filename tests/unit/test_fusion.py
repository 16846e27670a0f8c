"""Weighted hybrid fusion (`cairn.index.fusion.weighted_fusion`) over hand-made Milvus hits."""

from __future__ import annotations

from typing import Any

import pytest

from cairn.index.fusion import KEYWORD_GUARD, weighted_fusion


def hit(chunk: str, score: float) -> dict[str, Any]:
    return {"id": chunk, "distance": score, "entity": {"doc_id": chunk}}


def ids(hits: list[dict[str, Any]]) -> list[str]:
    return [h["id"] for h in hits]


def test_each_leg_is_scaled_by_its_best_score() -> None:
    """BM25's scale does not matter: scores are over each leg's best, so the chunk best in both scores 1."""
    dense = [hit("a", 0.6), hit("b", 0.3)]
    keyword = [hit("a", 40.0), hit("b", 20.0)]
    fused = weighted_fusion(dense, keyword, dense_weight=0.8, limit=10, cosines={})
    assert ids(fused) == ["a", "b"]
    assert fused[0]["distance"] == pytest.approx(1.0)
    assert fused[1]["distance"] == pytest.approx(0.8 * 0.5 + 0.2 * 0.5)


def test_the_dense_weight_decides_between_legs_that_disagree() -> None:
    """A chunk the dense leg prefers wins at a high dense weight and loses at a low one."""
    dense = [hit("semantic", 0.8), hit("lexical", 0.4)]
    keyword = [hit("lexical", 10.0), hit("semantic", 2.0)]
    assert ids(weighted_fusion(dense, keyword, 0.8, 10, {}))[0] == "semantic"
    assert ids(weighted_fusion(dense, keyword, 0.2, 10, {}))[0] == "lexical"


def test_a_keyword_only_hit_gets_its_real_cosine() -> None:
    """A chunk the dense leg did not return is scored with its own cosine, not as dense 0."""
    dense = [hit("d1", 0.5)]
    keyword = [hit("k1", 1.0), hit("k2", 1.0)]  # no cosine for k2: dense 0
    fused = {h["id"]: h["distance"] for h in weighted_fusion(dense, keyword, 0.5, 10, {"k1": 0.4})}
    assert fused["k1"] == pytest.approx(0.5 * 0.4 / 0.5 + 0.5 * 1.0)
    assert fused["k2"] == pytest.approx(0.5 * 1.0)


def test_the_keyword_legs_best_hit_is_kept_near_the_top() -> None:
    """A strong keyword match far down the fused order moves up to the guard's place, scores never rising."""
    dense = [hit(f"topic{n}", 0.9 - n * 0.01) for n in range(8)]
    keyword = [hit("code", 30.0), hit("topic0", 3.0)]
    fused = weighted_fusion(dense, keyword, 0.9, limit=5, cosines={"code": 0.05})
    assert ids(fused).index("code") == KEYWORD_GUARD - 1
    assert len(fused) == 5
    scores = [h["distance"] for h in fused]
    assert scores == sorted(scores, reverse=True)


def test_without_keyword_hits_the_dense_order_stands() -> None:
    """No keyword match (a query of stop words): the dense leg's order, truncated to the limit."""
    dense = [hit("a", 0.7), hit("b", 0.5), hit("c", 0.2)]
    assert ids(weighted_fusion(dense, [], 0.8, 2, {})) == ["a", "b"]


def test_a_match_in_the_headings_adds_its_weight() -> None:
    """Two chunks equal on both legs are ordered by their headings' score, which adds its weight times its
    share of the best one."""
    dense = [hit("parking", 0.5), hit("library", 0.5)]
    keyword = [hit("parking", 8.0), hit("library", 8.0)]
    fused = weighted_fusion(dense, keyword, 0.8, 10, {}, {"library": 6.0, "parking": 3.0}, heading_weight=0.05)
    assert ids(fused) == ["library", "parking"]
    assert fused[0]["distance"] == pytest.approx(1.0 + 0.05)
    assert fused[1]["distance"] == pytest.approx(1.0 + 0.05 * 0.5)


def test_headings_rerank_candidates_and_add_none() -> None:
    """A chunk that matches only by its headings is not a candidate; the best heading among candidates scales."""
    dense = [hit("a", 0.6), hit("b", 0.6)]
    fused = weighted_fusion(dense, [], 0.8, 10, {}, {"elsewhere": 50.0, "b": 2.0}, heading_weight=0.05)
    assert ids(fused) == ["b", "a"]
    assert fused[0]["distance"] == pytest.approx(0.8 + 0.05)


def test_without_a_heading_weight_the_two_legs_decide_alone() -> None:
    """Heading weight 0 (or no heading scores) ranks exactly as the two-leg fusion."""
    dense = [hit("a", 0.7), hit("b", 0.69), hit("c", 0.2)]
    keyword = [hit("c", 5.0), hit("b", 4.0)]
    headings = {"a": 1.0, "c": 9.0}
    two_legs = weighted_fusion(dense, keyword, 0.8, 10, {})
    assert weighted_fusion(dense, keyword, 0.8, 10, {}, headings, heading_weight=0.0) == two_legs
    assert ids(two_legs) == ["b", "a", "c"]
    assert ids(weighted_fusion(dense, keyword, 0.8, 10, {}, headings, heading_weight=0.5)) == ["b", "c", "a"]
