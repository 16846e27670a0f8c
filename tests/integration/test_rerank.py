"""Reranking as an option of search and ask, on real Milvus Lite with real models."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn import Cairn, Settings

pytestmark = pytest.mark.integration

QUESTION = "What happens when a lithium battery swells?"


@pytest.fixture
def cross_encoder_dir(tmp_path: Path) -> Path:
    """A real sentence-transformers CrossEncoder saved to disk: the packaged MiniLM with a one-score head
    (untrained, so its ranking is not meaningful; the tests check that cairn ranks by it, not its quality)."""
    import torch
    from sentence_transformers import CrossEncoder

    from cairn.embed.local import _resolve_model

    torch.manual_seed(7)
    model = CrossEncoder(_resolve_model("all-MiniLM-L6-v2"), num_labels=1, local_files_only=True)
    model.save(str(tmp_path / "cross-encoder"))
    return tmp_path / "cross-encoder"


def _cairn(home: Path, embedder, **settings: object) -> Cairn:  # type: ignore[no-untyped-def]
    cairn = Cairn(Settings(home=home, **settings))  # type: ignore[arg-type]
    cairn._embedder = embedder
    return cairn


def test_rerank_orders_hits_by_the_cross_encoder(tmp_path: Path, embedder, docs: Path, cross_encoder_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """search(rerank=True) returns the k candidates the cross-encoder scores highest, best first, with its
    scores; the same model loaded independently gives the same scores."""
    from sentence_transformers import CrossEncoder

    cairn = _cairn(tmp_path / "home", embedder, rerank_model=str(cross_encoder_dir))
    try:
        cairn.ingest([docs])
        pool = cairn.search(QUESTION, k=10).hits
        reranked = cairn.search(QUESTION, k=2, rerank=True)
        assert reranked.warnings == []
        independent = CrossEncoder(str(cross_encoder_dir), local_files_only=True)
        expected = independent.predict([(QUESTION, h.text) for h in pool], show_progress_bar=False)
        best = sorted(zip(expected, (h.chunk_id for h in pool), strict=True), key=lambda pair: -pair[0])[:2]
        assert [h.chunk_id for h in reranked.hits] == [chunk for _, chunk in best]
        assert [h.score for h in reranked.hits] == pytest.approx([float(score) for score, _ in best], abs=1e-5)
    finally:
        cairn.close()


def test_rerank_without_a_local_model_is_skipped_with_one_message(tmp_path: Path, embedder, docs: Path) -> None:  # type: ignore[no-untyped-def]
    """With the default model absent offline, search(rerank=True) keeps the fused order and says why; ask
    reports the same note and still answers."""
    cairn = _cairn(tmp_path / "home", embedder, rerank_model=str(tmp_path / "not-installed"))
    try:
        cairn.ingest([docs])
        plain = cairn.search(QUESTION, k=3)
        reranked = cairn.search(QUESTION, k=3, rerank=True)
        assert [h.chunk_id for h in reranked.hits] == [h.chunk_id for h in plain.hits]
        (note,) = reranked.warnings
        assert note.startswith("reranking skipped")
        assert "CAIRN_RERANK_MODEL" in note
        answer = cairn.ask(QUESTION, rerank=True)
        assert "fireproof bin" in answer.answer
        assert answer.warnings == [note]
    finally:
        cairn.close()


def test_diversify_returns_k_distinct_hits(tmp_path: Path, embedder, docs: Path) -> None:  # type: ignore[no-untyped-def]
    """search(diversify=True) still returns k hits from the collection, without repeats."""
    cairn = _cairn(tmp_path / "home", embedder)
    try:
        cairn.ingest([docs])
        hits = cairn.search("leave", k=3, diversify=True).hits
        assert len(hits) == 3
        assert len({h.chunk_id for h in hits}) == 3
    finally:
        cairn.close()
