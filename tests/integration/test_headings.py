"""The headings leg of hybrid search: a chunk's title and section path, indexed by BM25, on real Milvus Lite."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cairn import Cairn
from cairn.models import SearchHit
from cairn.settings import Settings

pytestmark = pytest.mark.integration

QUERY = "library cards renewal"
SENTENCE = "Submit the renewal form before the end of March."
RENEWAL = f"Renewal\n\n{SENTENCE}"  # the section's chunk text: its own heading, then the sentence


def _two_handbooks(tmp_path: Path) -> Path:
    """Two documents whose `Renewal` sections are the same words; only their titles tell them apart.

    Each has a long introduction, so its `Renewal` section is a chunk of its own whose text does not
    name the document: only the heading path (`Library cards > Renewal`) does."""
    folder = tmp_path / "handbooks"
    folder.mkdir()
    for name, title, subject in (("parking.md", "Parking permits", "parking"), ("cards.md", "Library cards", "study")):
        intro = " ".join(f"Rule {n}: the {subject} office opens at nine and closes at five." for n in range(40))
        (folder / name).write_text(f"# {title}\n\n{intro}\n\n## Renewal\n\n{SENTENCE}\n")
    return folder


def _renewals(cairn: Cairn) -> list[SearchHit]:
    """The two `Renewal` chunks in the order hybrid search ranks them."""
    hits = cairn.search(QUERY, k=10, mode="hybrid").hits
    renewals = [hit for hit in hits if hit.location.heading_path[-1:] == ("Renewal",)]
    assert [hit.text for hit in renewals] == [RENEWAL, RENEWAL]
    return renewals


def _open(home: Path, embedder) -> Cairn:  # type: ignore[no-untyped-def]
    cairn = Cairn(Settings(home=home))
    cairn._embedder = embedder
    return cairn


def test_the_title_decides_between_sections_with_the_same_words(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """With the headings leg, the section under the title the query names ranks first; without it (weight 0)
    the two sections score the same, since their text and so both other legs are identical."""
    cairn = _open(tmp_path / "home", embedder)
    try:
        cairn.ingest([_two_handbooks(tmp_path)])
        first, second = _renewals(cairn)
        assert first.location.heading_path == ("Library cards", "Renewal")
        assert second.location.heading_path == ("Parking permits", "Renewal")
        assert first.score > second.score
        cairn.settings = cairn.settings.model_copy(update={"fusion_heading_weight": 0.0})
        first, second = _renewals(cairn)
        assert first.score == pytest.approx(second.score)
    finally:
        cairn.close()


def test_documents_without_headings_are_searched_as_before(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """Plain text has no heading path: its rows index empty headings, and hybrid search ranks it as with weight 0."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("The renewal form for library cards is at the front desk.\n")
    (folder / "b.txt").write_text("Parking permits are renewed online every March.\n")
    cairn = _open(tmp_path / "home", embedder)
    try:
        cairn.ingest([folder])
        with_leg = cairn.search(QUERY, k=5, mode="hybrid").hits
        cairn.settings = cairn.settings.model_copy(update={"fusion_heading_weight": 0.0})
        without = cairn.search(QUERY, k=5, mode="hybrid").hits
        assert [h.chunk_id for h in with_leg] == [h.chunk_id for h in without]
        assert [h.score for h in with_leg] == pytest.approx([h.score for h in without])
        assert with_leg[0].source.endswith("a.txt")
    finally:
        cairn.close()


def test_a_collection_made_before_the_heading_index_searches_and_reindex_adds_it(  # type: ignore[no-untyped-def]
    tmp_path: Path, embedder
) -> None:
    """A collection created without a heading index still answers hybrid searches (the leg is skipped, so
    the two sections tie); `cairn reindex` rebuilds it with the index, and the title decides again."""
    folder, home = _two_handbooks(tmp_path), tmp_path / "home"
    before = _open(home, embedder)
    before.index.heading_index = False  # as cairn made collections before the heading index existed
    try:
        before.ingest([folder])
    finally:
        before.close()
    after = _open(home, embedder)
    try:
        assert "heading_index" not in after.collection_info().features
        first, second = _renewals(after)
        assert first.score == pytest.approx(second.score)
        after.reindex(after.settings.embed_model)
        assert "heading_index" in after.collection_info().features
        first, second = _renewals(after)
        assert first.location.heading_path == ("Library cards", "Renewal")
        assert first.score > second.score
    finally:
        after.close()


def test_the_legs_of_a_hybrid_search_run_at_once_and_rank_as_one_after_another(  # type: ignore[no-untyped-def]
    tmp_path: Path, embedder
) -> None:
    """The dense leg and the cosine search run on the search threads beside the keyword leg and the headings
    search; the hits and scores are exactly those of the same searches run one after another."""
    cairn = _open(tmp_path / "home", embedder)
    try:
        cairn.ingest([_two_handbooks(tmp_path)])
        client = cairn.index.client
        calls: list[tuple[str, str]] = []  # (the searched field, or "cosine" for a restricted dense search; thread)
        search = client.search

        def recorded(*args, **kwargs):  # type: ignore[no-untyped-def]
            field = kwargs["anns_field"]
            restricted = field == "dense" and "chunk_id in" in kwargs["filter"]
            calls.append(("cosine" if restricted else field, threading.current_thread().name))
            return search(*args, **kwargs)

        client.search = recorded
        at_once = cairn.search("parking office renewal hours", k=10, mode="hybrid").hits
        caller = threading.current_thread().name
        threads = dict(calls)
        assert threads["dense"].startswith("cairn-search")
        assert threads["sparse"] == threads["headings_sparse"] == caller
        assert threads.get("cosine", "cairn-search").startswith("cairn-search")
        calls.clear()
        cairn.index.concurrent_legs = False
        in_turn = cairn.search("parking office renewal hours", k=10, mode="hybrid").hits
        assert {thread for _, thread in calls} == {caller}
        assert [h.chunk_id for h in at_once] == [h.chunk_id for h in in_turn]
        assert [h.score for h in at_once] == [h.score for h in in_turn]
    finally:
        cairn.close()
