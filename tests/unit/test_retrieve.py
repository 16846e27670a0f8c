from cairn.models import Location, SearchHit
from cairn.retrieve import promote_exact_phrases


def _hit(chunk_id: str, text: str) -> SearchHit:
    return SearchHit(doc_id="d", source="/s", chunk_id=chunk_id, score=0.0, text=text, location=Location(), version=1)


def test_verbatim_phrase_moves_to_front_keeping_order_otherwise() -> None:
    """Hits containing the query verbatim (any case or spacing) lead; the rest keep fused order."""
    hits = [_hit("a", "on topic"), _hit("b", "also on topic"), _hit("c", "has An   Extra\nDose of it")]
    assert [h.chunk_id for h in promote_exact_phrases("an extra dose", hits, 3)] == ["c", "a", "b"]


def test_result_is_cut_to_k() -> None:
    """Only k hits come back, after promotion."""
    hits = [_hit(str(i), "text") for i in range(5)] + [_hit("x", "exact words here")]
    assert [h.chunk_id for h in promote_exact_phrases("exact words", hits, 2)] == ["x", "0"]


def test_single_word_queries_are_not_reordered() -> None:
    """A one-word query matches too much to be treated as a phrase: the fused order stands."""
    hits = [_hit("a", "nothing"), _hit("b", "battery")]
    assert [h.chunk_id for h in promote_exact_phrases("battery", hits, 2)] == ["a", "b"]
