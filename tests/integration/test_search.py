"""Search modes, answers and collections on real Milvus Lite with the packaged model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cairn import Cairn
from cairn.errors import InvalidRequest, NotFound
from cairn.generate.extractive import NO_ANSWER
from cairn.settings import Settings

pytestmark = pytest.mark.integration

REAL = Path(__file__).parents[1] / "fixtures" / "real"
REAL_DOCS = REAL / "docs"


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_each_mode_finds_the_relevant_document_first(cairn: Cairn, docs: Path, mode: str) -> None:
    """Dense, keyword and hybrid search each rank the document that answers the query first."""
    cairn.ingest([docs])
    hits = cairn.search("paid parental leave days", k=3, mode=mode).hits  # type: ignore[arg-type]
    assert hits[0].source == "docs/leave.md"
    assert hits[0].location.heading_path == ("Leave policy", "Parental leave")
    assert len({h.chunk_id for h in hits}) == len(hits)


def test_script_text_is_not_indexed(cairn: Cairn, docs: Path) -> None:
    """HTML script content never becomes searchable text."""
    cairn.ingest([docs])
    assert all("secret" not in h.text for h in cairn.search("var secret", k=10, mode="keyword").hits)


def test_ask_cites_the_source_and_location(cairn: Cairn, docs: Path) -> None:
    """The extractive answer quotes the supporting sentence and cites its file and heading."""
    cairn.ingest([docs])
    answer = cairn.ask("How many days of parental leave do employees get?")
    assert "120 days" in answer.answer
    first = re.search(r"\[(\d+)\]", answer.answer)
    assert first is not None
    cited = answer.citations[int(first.group(1)) - 1]
    assert cited.source == "docs/leave.md"
    assert cited.location.label == "Leave policy › Parental leave, lines 3–5"


def test_ask_says_so_when_documents_do_not_answer(cairn: Cairn, docs: Path) -> None:
    """A question unrelated to every document gets the no-answer message and no citations."""
    cairn.ingest([docs])
    answer = cairn.ask("What is the boiling point of tungsten hexafluoride?")
    assert answer.answer == NO_ANSWER
    assert answer.citations == []


def test_real_documents_are_each_found_by_their_own_phrase(cairn: Cairn) -> None:
    """Real PDFs, HTML, Markdown and text that we did not write are each found by a phrase only they contain.

    With exact-phrase promotion on, as for a collection searched by remembered sentences.
    """
    cairn.settings = cairn.settings.model_copy(update={"exact_phrase_promotion": True})
    phrases = json.loads((REAL / "phrases.json").read_text())
    report = cairn.ingest([REAL_DOCS])
    assert report.failed == []
    assert report.ingested == report.files == len(phrases)
    for name, phrase in phrases.items():
        hits = cairn.search(phrase, k=3, mode="hybrid").hits
        assert Path(hits[0].source).name == name, (phrase, [h.source for h in hits])
        wanted = " ".join(phrase.split()).lower()
        assert any(wanted in " ".join(h.text.split()).lower() for h in hits if Path(h.source).name == name)


def test_exact_phrase_promotion_is_a_switch(cairn: Cairn, tmp_path: Path) -> None:
    """Promotion on: the chunk holding the query verbatim leads hybrid results. Off: the fused order stands."""
    folder = tmp_path / "notes"
    folder.mkdir()
    # Both legs rank topic.txt first (no RRF tie), but only phrase.txt holds "charge the battery".
    (folder / "topic.txt").write_text(
        "Battery care: charge each battery on the shelf, charge the spare batteries overnight, and check the "
        "battery charger. Charge a battery only when the battery is cool.\n"
    )
    (folder / "phrase.txt").write_text(
        "Inventory notes\n\nThe cupboard by the door holds paper. Remember to charge the battery before lunch.\n"
    )
    cairn.ingest([folder])

    def first_hit() -> str:
        return Path(cairn.search("charge the battery", k=2, mode="hybrid").hits[0].source).name

    cairn.settings = cairn.settings.model_copy(update={"exact_phrase_promotion": True})
    assert first_hit() == "phrase.txt"
    cairn.settings = cairn.settings.model_copy(update={"exact_phrase_promotion": False})
    assert first_hit() == "topic.txt"


def test_bad_requests_are_clear_errors(cairn: Cairn, docs: Path) -> None:
    """Empty queries, out-of-range k, unknown modes and unknown collections raise typed errors."""
    cairn.ingest([docs])
    with pytest.raises(InvalidRequest, match="empty"):
        cairn.search("   ")
    with pytest.raises(InvalidRequest, match="out of range"):
        cairn.search("leave", k=0)
    with pytest.raises(InvalidRequest, match="unknown search mode"):
        cairn.search("leave", mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="no collection 'nothing'"):
        cairn.search("leave", collection="nothing")
    with pytest.raises(InvalidRequest, match="invalid collection name"):
        cairn.search("leave", collection="../etc")


def test_collection_info_and_drop(cairn: Cairn, docs: Path) -> None:
    """Info counts documents, chunks and engine rows; drop removes the collection but keeps blobs."""
    report = cairn.ingest([docs], collection="hr")
    info = cairn.collection_info("hr")
    assert (info.documents, info.chunks, info.rows) == (3, report.chunks, report.chunks)
    assert info.engine == "milvus-lite"
    assert info.dim == 384
    assert [c.name for c in cairn.collections()] == ["hr"]
    blobs = list(cairn.vault.store.list("blobs/"))
    cairn.drop_collection("hr")
    assert cairn.collections() == []
    assert not cairn.index.has_collection("hr")
    assert list(cairn.vault.store.list("blobs/")) == blobs


@pytest.mark.parametrize("fusion", ["weighted", "rrf"])
def test_hybrid_shows_a_code_only_keyword_search_can_match(cairn: Cairn, tmp_path: Path, fusion: str) -> None:
    """A rare code the model knows nothing of reaches hybrid's first three among passages on the same topic,
    whichever fusion is chosen."""
    folder = tmp_path / "support"
    folder.mkdir()
    topics = ["charger", "battery", "charging", "power", "display", "screen", "cable", "port", "fan", "sensor"]
    for n, topic in enumerate(f"{part} {kind}" for part in topics for kind in ("fault", "error")):
        (folder / f"topic{n}.txt").write_text(
            f"Troubleshooting a {topic}: when the device reports a fault or an error code, restart it, check the "
            f"charger and the cable, and look the error code up in the fault table before calling support.\n"
        )
    (folder / "codes.txt").write_text("Shipping notes\n\nCrates marked QX7741 go to the second dock on Fridays.\n")
    cairn.ingest([folder])
    cairn.settings = cairn.settings.model_copy(update={"hybrid_fusion": fusion})
    hits = cairn.search("error code QX7741", k=3, mode="hybrid").hits
    assert "support/codes.txt" in [h.source for h in hits]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def _handbook(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    intro = " ".join(f"Rule {n}: book trips through the travel desk and keep them short." for n in range(40))
    (folder / "travel.md").write_text(
        f"# Expenses handbook\n\n{intro}\n\n## Reimbursement\n\nKeep the receipt of every taxi ride.\n"
    )
    return folder


def _sections_matching(cairn: Cairn, query: str) -> set[tuple[str, ...]]:
    return {h.location.heading_path for h in cairn.search(query, k=5, mode="keyword").hits}


@pytest.mark.parametrize("context", [True, False])
def test_keyword_heading_context_makes_headings_searchable(tmp_path: Path, embedder, context: bool) -> None:  # type: ignore[no-untyped-def]
    """With keyword heading context a collection's keyword index reads each chunk's heading path, so the
    document's title finds a later section's chunk that does not repeat it; without, only the first chunk.
    The stored text is the same either way."""
    folder = _handbook(tmp_path)
    cairn = Cairn(Settings(home=tmp_path / f"home-{context}", keyword_heading_context=context))
    cairn._embedder = embedder
    try:
        cairn.ingest([folder])
        sections = _sections_matching(cairn, "handbook")
        assert (("Expenses handbook", "Reimbursement") in sections) is context
        assert ("Expenses handbook",) in sections
        taxi = cairn.search("receipt taxi", k=1, mode="keyword").hits
        assert taxi[0].text == "Reimbursement\n\nKeep the receipt of every taxi ride."
    finally:
        cairn.close()


def test_reindex_moves_a_collection_to_keyword_heading_context(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """A collection made without keyword heading context keeps its keyword index when the setting is turned
    on; a reindex (same model) rebuilds it into a new engine collection that reads the heading paths."""
    folder, home = _handbook(tmp_path), tmp_path / "home"
    before = Cairn(Settings(home=home))
    before._embedder = embedder
    try:
        before.ingest([folder])
    finally:
        before.close()
    after = Cairn(Settings(home=home, keyword_heading_context=True))
    after._embedder = embedder
    try:
        assert ("Expenses handbook", "Reimbursement") not in _sections_matching(after, "handbook")
        after.reindex(after.settings.embed_model)
        assert ("Expenses handbook", "Reimbursement") in _sections_matching(after, "handbook")
    finally:
        after.close()
