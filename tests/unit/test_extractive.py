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


def _heading_hit(text: str, heading: tuple[str, ...]) -> SearchHit:
    return SearchHit(
        doc_id="d" * 32,
        source="/kb/doc",
        chunk_id="h",
        score=1.0,
        text=text,
        location=Location(heading_path=heading),
        version=1,
    )


FAQ = """PEOPLE AND LEAVE

Q: How do I book holiday?
A: Request annual leave in the HR portal. Your manager approves it.

Q: What happens to my leave if I am sick while on holiday?
A: If you are ill for two or more days of a holiday and can provide a doctor's
note, those days are recorded as sick leave and your annual leave is
credited back.

Q: Can I buy or sell annual leave?
A: No. Instead, up to five unused days can be carried over into the first
quarter of the next year.
"""


def test_faq_answer_is_what_follows_the_matching_question(embedder) -> None:  # type: ignore[no-untyped-def]
    """Asked an FAQ question in other words, the answer is the FAQ's answer, whole, never its question line."""
    answer = extractive_answer("What happens to my annual leave if I am sick on holiday?", [_hit("a", FAQ)], embedder)
    assert answer.answer == (
        "If you are ill for two or more days of a holiday and can provide a doctor's note, those days are "
        "recorded as sick leave and your annual leave is credited back. [1]"
    )


def test_a_short_answer_travels_with_the_sentence_after_it(embedder) -> None:  # type: ignore[no-untyped-def]
    """ "A: No." is quoted with the sentence that follows it, without its "A:" label."""
    answer = extractive_answer("Can I buy or sell annual leave?", [_hit("a", FAQ)], embedder)
    assert answer.answer == (
        "No. Instead, up to five unused days can be carried over into the first quarter of the next year. [1]"
    )


def test_numbered_question_is_context_and_its_example_is_skipped(embedder) -> None:  # type: ignore[no-untyped-def]
    """After a numbered question that ends with an example, the answer is the paragraph after the example."""
    text = (
        "2.2. When building Valgrind, 'make' fails with this:\n"
        "    /usr/bin/ld: cannot find -lc\n    collect2: ld returned 1 exit status\n\n"
        "You need to install the glibc-static-devel package.\n\n"
        "2.3. Why does the build take so long?\nIt compiles every tool twice."
    )
    answer = extractive_answer("When building Valgrind, 'make' fails with cannot find -lc", [_hit("a", text)], embedder)
    assert answer.answer == "You need to install the glibc-static-devel package. [1]"


def test_heading_or_title_phrased_as_a_question_is_answered_by_its_body(embedder) -> None:  # type: ignore[no-untyped-def]
    """A Markdown heading, ticket title or mail subject asking the question is context; the body answers."""
    ticket = _heading_hit(
        "T-17: How do I reset my VPN token?\n\nOpen the self-service portal and choose Reset token. "
        "The new token arrives by text message within five minutes.",
        ("T-17: How do I reset my VPN token?",),
    )
    mail = _heading_hit(
        "Go to the self-service portal and choose Reset token. A new token is sent by text message.",
        ("Re: How can I reset my VPN token?",),
    )
    for hit in (ticket, mail):
        answer = extractive_answer("How do I reset my VPN token?", [hit], embedder)
        assert "?" not in answer.answer
        assert "self-service portal and choose Reset token." in answer.answer


def test_interrogative_sentences_are_never_quoted(embedder) -> None:  # type: ignore[no-untyped-def]
    """Without a matching Q/A structure, the answer still leaves out every question in the passage."""
    text = (
        "Why do batteries swell? Lithium polymer cells swell when they are overcharged or damaged. "
        "Is a swollen battery dangerous? A swollen battery can catch fire and must not be flown."
    )
    answer = extractive_answer("Are swollen lithium batteries a fire risk?", [_hit("a", text)], embedder)
    assert "?" not in answer.answer
    assert "catch fire" in answer.answer


def test_consecutive_sentences_are_quoted_in_source_order(embedder) -> None:  # type: ignore[no-untyped-def]
    """Sentences of one passage that answer together are quoted together, in the order written."""
    text = (
        "Employees receive up to 15 days of paid sick leave per year. After the paid sick leave is used, "
        "statutory sick pay applies. The canteen opens at noon."
    )
    answer = extractive_answer("How much paid sick leave do employees get?", [_hit("a", text)], embedder)
    assert answer.answer.startswith(
        "Employees receive up to 15 days of paid sick leave per year. [1] After the paid sick leave is used"
    )
    assert "canteen" not in answer.answer
