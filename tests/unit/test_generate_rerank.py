"""MMR diversification with the real embedding model, and the reranker's offline refusal."""

from __future__ import annotations

import pytest

from cairn.generate.rerank import RerankUnavailable, load_reranker, mmr_order
from cairn.models import Location, SearchHit


def _hit(chunk_id: str, text: str) -> SearchHit:
    return SearchHit(
        doc_id="d" * 32, source=f"/kb/{chunk_id}.md", chunk_id=chunk_id, score=1.0, text=text, location=Location(),
        version=1,
    )  # fmt: skip


def test_mmr_keeps_near_copies_from_crowding_the_top(embedder) -> None:  # type: ignore[no-untyped-def]
    """Two near-identical passages rank first by relevance; MMR keeps one and brings in the distinct one."""
    hits = [
        _hit("a", "Employees receive 120 days of paid parental leave."),
        _hit("b", "Employees receive 120 days of paid parental leave each year."),
        _hit("c", "Parental leave requests go to HR one month before the birth."),
    ]
    assert [h.chunk_id for h in mmr_order("parental leave", hits, embedder, 2, diversity=0.0)] == ["a", "b"]
    assert [h.chunk_id for h in mmr_order("parental leave", hits, embedder, 2, diversity=0.5)] == ["a", "c"]


def test_a_cross_encoder_that_is_not_on_disk_is_refused_with_how_to_provide_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Nothing is downloaded: a model missing offline gives one message naming CAIRN_RERANK_MODEL."""
    with pytest.raises(RerankUnavailable, match="CAIRN_RERANK_MODEL"):
        load_reranker(str(tmp_path / "no-such-cross-encoder"))
