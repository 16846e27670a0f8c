"""The answer checks of `cairn eval --answers` (cairn.eval.answers), on answers written by hand."""

from cairn.eval.answers import check_answer, summarize
from cairn.generate.extractive import NO_ANSWER
from cairn.models import Answer, Citation, Location

PASSAGE = """Q: What happens to my leave if I am sick while on holiday?
A: If you are ill for two or more days of a holiday and can provide a doctor's
note, those days are recorded as sick leave and your annual leave is
credited back.

Q: Can I buy or sell annual leave?
A: No. Instead, up to five unused days can be carried over."""
GOLD = (
    "If you are ill for two or more days of a holiday and can provide a doctor's\nnote, those days are "
    "recorded as sick leave and your annual leave is\ncredited back."
)
QUESTION = "What happens to my annual leave if I am sick on holiday?"


def _answer(text: str, supported: bool = True) -> Answer:
    citation = Citation(
        source="/kb/faq.txt", location=Location(), doc_id="d" * 32, chunk_id="c", version=1, text=PASSAGE
    )
    return Answer(answer=text, citations=[citation.model_copy(update={"supported": supported})])


def test_a_whole_gold_sentence_is_quoted_and_not_cut() -> None:
    """Quoting the gold answer's sentence whole (wrapped lines joined) counts as gold quoted, nothing cut."""
    answer = _answer(" ".join(GOLD.split()) + " [1]")
    check = check_answer("q1", QUESTION, answer, GOLD)
    assert check.gold_quoted
    assert not check.question_echoed
    assert check.cut_sentences == []


def test_a_hard_wrapped_line_taken_as_a_sentence_is_cut() -> None:
    """A quote that starts mid-sentence at a wrapped line ("note, those days ...") is a cut sentence."""
    answer = _answer("note, those days are recorded as sick leave and your annual leave is [1]")
    check = check_answer("q1", QUESTION, answer, GOLD)
    assert check.cut_sentences == ["note, those days are recorded as sick leave and your annual leave is"]


def test_the_question_line_quoted_back_is_an_echo() -> None:
    """Quoting the FAQ's question line is echoing the question, and does not quote the gold answer."""
    answer = _answer("Q: What happens to my leave if I am sick while on holiday? [1]")
    check = check_answer("q1", QUESTION, answer, GOLD)
    assert check.question_echoed
    assert not check.gold_quoted


def test_rates_over_answers() -> None:
    """Rates are shares of questions; citation support is the share of citations supported."""
    good = check_answer("q1", QUESTION, _answer(" ".join(GOLD.split()) + " [1]"), GOLD)
    unsupported = check_answer("q2", QUESTION, _answer(" ".join(GOLD.split()) + " [1]", supported=False), GOLD)
    nothing = check_answer("q3", QUESTION, Answer(answer=NO_ANSWER, citations=[]), GOLD)
    rates = summarize([good, unsupported, nothing])
    assert rates == {
        "gold_quoted": 0.6667,
        "question_echoed": 0.0,
        "cut_sentences": 0.0,
        "no_answer": 0.3333,
        "citations_supported": 0.5,
    }


def test_a_sentence_under_a_term_line_is_not_cut() -> None:
    """A man page's answer, indented under its question line, starts a sentence though no punctuation precedes it."""
    passage = (
        "I asked Git to ignore files, yet they are still tracked\n           A gitignore file keeps them untracked."
    )
    citation = Citation(source="/g", location=Location(), doc_id="d" * 32, chunk_id="c", version=1, text=passage)
    answer = Answer(answer="A gitignore file keeps them untracked. [1]", citations=[citation])
    assert check_answer("q", "Why are ignored files tracked?", answer, passage).cut_sentences == []
