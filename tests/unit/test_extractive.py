import re

from cairn.generate.extractive import NO_ANSWER, extractive_answer
from cairn.models import Location, SearchHit


def _hit(chunk_id: str, text: str, source: str = "/kb/doc.md") -> SearchHit:
    return SearchHit(
        doc_id="d" * 32,
        source=source,
        chunk_id=chunk_id,
        score=1.0,
        text=text,
        location=Location(heading_path=("Policy",)),
        version=1,
    )


def test_answer_quotes_the_best_sentence_and_numbers_its_citation(embedder) -> None:  # type: ignore[no-untyped-def]
    """The most relevant sentence comes first, followed by [n] pointing at its passage."""
    hits = [
        _hit("a", "Remote work\n\nStaff may work remotely three days a week. The office opens at eight.", "/kb/a.md"),
        _hit("b", "Parental leave\n\nEmployees get 120 days of paid parental leave.", "/kb/b.md"),
    ]
    answer = extractive_answer("How many days of parental leave do employees get?", hits, embedder)
    assert answer.answer.startswith("Employees get 120 days of paid parental leave. [1]")
    assert answer.citations[0].source == "/kb/b.md"
    assert answer.citations[0].chunk_id == "b"
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)}
    assert numbers == set(range(1, len(answer.citations) + 1))


def test_headings_are_not_quoted_as_answers(embedder) -> None:  # type: ignore[no-untyped-def]
    """A short line without closing punctuation (a heading) is never an answer sentence."""
    hits = [_hit("a", "Parental Leave Policy For Employees\n\nEmployees get 120 days of paid parental leave.")]
    answer = extractive_answer("parental leave policy for employees", hits, embedder)
    assert "Parental Leave Policy For Employees" not in answer.answer


def test_list_items_follow_the_sentence_that_introduces_them(embedder) -> None:  # type: ignore[no-untyped-def]
    """When the best sentence ends with ':', the steps after it are part of the answer."""
    text = (
        "If a battery swells, follow these steps:\n\nPower the drone off and remove the pack.\n\n"
        "Move the pack to a metal box full of sand.\n\nRecord the serial number in the fleet log."
    )
    answer = extractive_answer("What should I do if a battery swells?", [_hit("a", text)], embedder)
    assert "metal box full of sand" in answer.answer
    assert "serial number" in answer.answer


def test_unrelated_passages_give_no_answer(embedder) -> None:  # type: ignore[no-untyped-def]
    """When nothing is close to the question, the answer says so and cites nothing."""
    hits = [_hit("a", "The cafeteria serves lunch from noon until two o'clock every weekday.")]
    answer = extractive_answer("What is the orbital period of Neptune in years?", hits, embedder)
    assert (answer.answer, answer.citations) == (NO_ANSWER, [])
