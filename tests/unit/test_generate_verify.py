"""Citation verification with the real packaged embedding model."""

from __future__ import annotations

import re

from cairn.generate.answer import extractive_stream
from cairn.generate.extractive import NO_ANSWER
from cairn.generate.verify import claim_support, split_sentences, verify_answer
from cairn.models import Answer, Citation, Location, SearchHit

LEAVE = "Parental leave\n\nEmployees receive 120 days of paid parental leave."
SICK = "Sick leave is 15 days per year and needs a doctor's note after three days."
BATTERY = "If a lithium battery swells, move it to the fireproof bin outside the workshop."


def _hit(chunk_id: str, text: str) -> SearchHit:
    return SearchHit(
        doc_id="d" * 32,
        source=f"/kb/{chunk_id}.md",
        chunk_id=chunk_id,
        score=1.0,
        text=text,
        location=Location(heading_path=("Policy",)),
        version=1,
    )


def _answer(text: str, *passages: str) -> Answer:
    return Answer(answer=text, citations=[Citation.of(_hit(f"c{i}", p)) for i, p in enumerate(passages)])


def test_a_fabricated_citation_is_flagged(embedder) -> None:  # type: ignore[no-untyped-def]
    """A sentence that cites a passage for a figure the passage never states is flagged, with a warning
    naming the claim; the honest citation next to it stays supported."""
    answer = _answer(
        "Employees receive 400 days of paid parental leave [1]. Sick leave needs a doctor's note after three days [2].",
        LEAVE,
        SICK,
    )
    checked = verify_answer(answer, embedder)
    fabricated, honest = checked.citations
    assert (fabricated.supported, honest.supported) == (False, True)
    assert fabricated.support < 0.5 <= honest.support
    assert any("400 days" in w for w in checked.warnings)
    assert checked.answer == answer.answer  # the default policy flags; it does not rewrite


def test_a_citation_of_the_wrong_passage_is_flagged(embedder) -> None:  # type: ignore[no-untyped-def]
    """A true sentence that cites an unrelated passage is not supported by it."""
    checked = verify_answer(_answer("Swollen batteries go in the fireproof bin [1].", LEAVE), embedder)
    assert checked.citations[0].supported is False
    assert checked.citations[0].support < 0.3


def test_paraphrases_are_supported(embedder) -> None:  # type: ignore[no-untyped-def]
    """Saying what the passage says in other words still counts as support."""
    checked = verify_answer(_answer("Staff are entitled to 120 paid days of parental leave [1].", LEAVE), embedder)
    assert checked.citations[0].supported is True
    assert checked.citations[0].support >= 0.7


def test_the_drop_policy_removes_unsupported_sentences_and_renumbers(embedder) -> None:  # type: ignore[no-untyped-def]
    """With policy=drop, a sentence whose only citation fails is removed and the rest are renumbered 1..n."""
    answer = _answer(
        "The company was founded in 1998 in Oslo [1]. Swollen batteries go to the fireproof bin outside [2].",
        LEAVE,
        BATTERY,
    )
    checked = verify_answer(answer, embedder, policy="drop")
    assert checked.answer == "Swollen batteries go to the fireproof bin outside [1]."
    assert [c.chunk_id for c in checked.citations] == ["c1"]
    assert checked.citations[0].supported is True
    assert any("dropped" in w and "1998" in w for w in checked.warnings)


def test_dropping_every_sentence_leaves_the_no_answer_message(embedder) -> None:  # type: ignore[no-untyped-def]
    """When nothing cited is supported, the dropped answer says the documents do not answer."""
    checked = verify_answer(_answer("Employees get 400 days of leave [1].", LEAVE), embedder, policy="drop")
    assert (checked.answer, checked.citations) == (NO_ANSWER, [])


def test_a_number_missing_from_the_passage_caps_support(embedder) -> None:  # type: ignore[no-untyped-def]
    """Changing only the figure of an otherwise verbatim sentence drops its support below the floor."""
    exact, changed = claim_support(
        ["Employees receive 120 days of paid parental leave.", "Employees receive 121 days of paid parental leave."],
        [LEAVE, LEAVE],
        embedder,
    )
    assert exact > 0.9
    assert changed <= 0.25


def test_a_claim_that_negates_its_passage_is_not_supported(embedder) -> None:  # type: ignore[no-untyped-def]
    """Same words, opposite meaning: a negation cue or a negating prefix the passage does not share."""
    for claim, passage in (
        ("Employees receive 120 days of unpaid parental leave [1].", LEAVE),
        ("Sick leave does not need a doctor's note [1].", SICK),
        ("Never move a swollen lithium battery to the fireproof bin [1].", BATTERY),
    ):
        checked = verify_answer(_answer(claim, passage), embedder)
        assert checked.citations[0].supported is False, claim
        assert checked.citations[0].support <= 0.25, claim


def test_a_negation_the_passage_shares_is_supported(embedder) -> None:  # type: ignore[no-untyped-def]
    """Faithful negative statements keep their support: the passage says "not" (or "unpaid") too."""
    rules = "Visitors may not enter the laboratory without a badge. Overtime is unpaid for managers."
    for claim in ("Visitors may not enter the laboratory without a badge [1].", "Managers get unpaid overtime [1]."):
        checked = verify_answer(_answer(claim, rules), embedder)
        assert checked.citations[0].supported is True, claim
        assert checked.citations[0].support >= 0.5, claim


def test_extractive_answers_carry_support_too(embedder) -> None:  # type: ignore[no-untyped-def]
    """The offline answer has the same shape: every citation verified, and quoted sentences are supported."""
    hits = [_hit("a", LEAVE), _hit("b", SICK)]
    answer = extractive_stream(
        "How many days of parental leave do employees get?", hits, embedder, min_support=0.5, policy="flag"
    ).result()
    assert "120 days" in answer.answer
    assert answer.generator == "extractive"
    assert answer.citations
    assert all(c.supported and c.support > 0.9 for c in answer.citations)


def test_sentences_split_with_their_marks() -> None:
    """Marks stay with the sentence they follow, before or after its full stop."""
    parts = [p for p in split_sentences("A is one [1]. B is two. [2] C is three [3][1].") if p.strip()]
    assert parts == ["A is one [1].", "B is two. [2]", "C is three [3][1]."]
    assert [re.findall(r"\d", p) for p in parts] == [["1"], ["2"], ["3", "1"]]


def test_a_removed_link_inside_a_sentence_does_not_split_it() -> None:
    """ "[link removed]" (what safety leaves of a link) is part of its sentence; only citation marks end one."""
    from cairn.generate.verify import split_sentences

    text = "Use the URLs [link removed] and [link removed] for the two accounts. [1] Then push. [2]"
    assert [p for p in split_sentences(text) if p.strip()] == [
        "Use the URLs [link removed] and [link removed] for the two accounts. [1]",
        "Then push. [2]",
    ]
