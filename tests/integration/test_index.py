"""The Milvus index on real Milvus Lite: exactness of dense search, hidden row sets, deletes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cairn.index.milvus import IndexedDocument, MilvusIndex
from cairn.models import Chunk, Location
from cairn.vault import RowSet

pytestmark = pytest.mark.integration

DIM = 32


@pytest.fixture
def index(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = MilvusIndex(str(tmp_path / "m.db"))
    engine.ensure_collection("t", DIM)
    yield engine
    engine.close()


def _insert(index: MilvusIndex, doc_id: str, version: int, vectors: np.ndarray, word: str) -> None:
    chunks = [
        Chunk(
            chunk_id=f"{doc_id}-{version}-{i}",
            doc_id=doc_id,
            version=version,
            ordinal=i,
            text=f"{word} passage {i}",
            location=Location(line_start=i + 1, line_end=i + 1),
            token_count=3,
        )
        for i in range(len(vectors))
    ]
    document = IndexedDocument(
        doc_id=doc_id, source=f"/src/{doc_id}", version=version, tenant="default", allowed=["*"], mime="text/plain"
    )
    index.insert("t", document, chunks, vectors.astype(np.float32))


def test_dense_search_is_exact_by_default(index: MilvusIndex) -> None:
    """With the default FLAT index, dense top-10 equals brute-force top-10 (recall 1.0)."""
    assert index.client.describe_index("cairn_t", "dense")["index_type"] == "FLAT"
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3000, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    _insert(index, "aa", 1, vectors, "alpha")
    for _ in range(5):
        query = rng.standard_normal(DIM).astype(np.float32)
        query /= np.linalg.norm(query)
        hits = index.search("t", mode="dense", k=10, query_text="", query_vector=query)
        exact = {f"aa-1-{i}" for i in np.argsort(-(vectors @ query))[:10]}
        assert {h.chunk_id for h in hits} == exact


def test_hidden_row_sets_are_excluded_from_every_mode(index: MilvusIndex) -> None:
    """Rows of a hidden (doc, version) never appear in dense, keyword or hybrid results."""
    rng = np.random.default_rng(4)
    _insert(index, "aa", 1, rng.standard_normal((5, DIM)), "zebra")
    _insert(index, "aa", 2, rng.standard_normal((5, DIM)), "zebra")
    _insert(index, "bb", 1, rng.standard_normal((5, DIM)), "zebra")
    query = rng.standard_normal(DIM).astype(np.float32)
    for mode in ("dense", "keyword", "hybrid"):
        hits = index.search(
            "t",
            mode=mode,
            k=20,
            query_text="zebra passage",
            query_vector=query,
            hidden=[RowSet(doc_id="aa", version=1)],
        )
        assert {(h.doc_id, h.version) for h in hits} == {("aa", 2), ("bb", 1)}, mode


def test_delete_rows_removes_exactly_one_version(index: MilvusIndex) -> None:
    """Deleting a row set leaves other versions and documents in place."""
    rng = np.random.default_rng(5)
    _insert(index, "aa", 1, rng.standard_normal((4, DIM)), "x")
    _insert(index, "aa", 2, rng.standard_normal((4, DIM)), "x")
    index.delete_rows("t", [RowSet(doc_id="aa", version=1)])
    assert index.live_rowsets("t") == {RowSet(doc_id="aa", version=2)}
    assert index.count("t") == 4


def test_new_collections_take_the_bm25_parameters_given(tmp_path: Path) -> None:
    """bm25_k1 and bm25_b (settings of the same names) become the keyword index's parameters."""
    engine = MilvusIndex(str(tmp_path / "bm25.db"), bm25_k1=1.5, bm25_b=0.9)
    try:
        engine.ensure_collection("t", DIM)
        described = engine.client.describe_index(engine.engine_name("t"), "sparse")
        assert (float(described["bm25_k1"]), float(described["bm25_b"])) == (1.5, 0.9)
    finally:
        engine.close()
