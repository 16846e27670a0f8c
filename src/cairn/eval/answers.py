"""Answer quality: does `Cairn.ask` quote the gold answer, echo the question, or cut a sentence?

For each question of a set with gold answer passages (``answers.jsonl``, see `cairn.eval.dataset`)
the answer is asked through the real `Cairn.ask` and checked:

- **gold quoted**: at least one quoted piece of the answer comes from the gold answer passage
  (whitespace aside; a piece the answerer had to defang may differ by a word);
- **question echoed**: a quoted sentence asks something (ends with '?'), or is the question
  itself: contained in it, or sharing most of its content words;
- **cut sentence**: a quoted piece begins or ends in the middle of a sentence of its cited
  passage: neither sentence punctuation, a blank line, a list marker, nor a change of indentation
  separates it from the text around it;
- **citations supported**: the share of citations that verification (`cairn.generate.verify`)
  marked ``supported``.

The checks read the passages' own text; they do not use `cairn.sentences`, so a segmenter that
cuts sentences in the wrong places is caught rather than trusted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from cairn.eval.dataset import EvalDataset
from cairn.eval.runner import EvalSession
from cairn.generate.extractive import NO_ANSWER, content_words
from cairn.models import Answer

__all__ = ["AnswerCheck", "check_answer", "run_answer_eval", "summarize"]

_MARK = re.compile(r"\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")
_CLOSED = re.compile(r"[.!?:;][\"'’”)\]*_]*$")
_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)]|\|)\s")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_EXAMPLES = 10


@dataclass(frozen=True)
class AnswerCheck:
    """What one answer did: the pieces it quoted and each check's outcome."""

    question_id: str
    question: str
    answer: str
    gold_quoted: bool
    question_echoed: bool
    cut_sentences: list[str]
    citations: int
    supported: int

    @property
    def no_answer(self) -> bool:
        return self.answer == NO_ANSWER


def _pieces(answer: str) -> list[tuple[str, list[int]]]:
    """The quoted pieces of an answer, each with the citation numbers that follow it."""
    pieces: list[tuple[str, list[int]]] = []
    last = 0
    for mark in _MARK.finditer(answer):
        text = answer[last : mark.start()].strip()
        if text:
            pieces.append((text, [int(n) for n in re.findall(r"\d+", mark.group())]))
        last = mark.end()
    return pieces


def _flat(text: str) -> str:
    return " ".join(text.split())


def _from_gold(piece: str, gold: str) -> bool:
    if _flat(piece) in _flat(gold):
        return True
    words = piece.split()
    shared = sum(1 for w in words if w in gold)
    return len(words) >= 6 and shared >= len(words) - 1 and _flat(" ".join(words[:5])) in _flat(gold)


def _echoes(piece: str, question: str) -> bool:
    asked = content_words(question)
    for sentence in _SENTENCE_END.split(piece):
        said = content_words(sentence)
        if sentence.rstrip("\"'’”)]").endswith("?") or _flat(sentence).lower() in _flat(question).lower():
            return True
        if said and len(said & asked) / len(said | asked) >= 0.6:
            return True
    return False


def _locate(piece: str, passage: str) -> tuple[int, int] | None:
    words = piece.split()

    def find(part: list[str]) -> re.Match[str] | None:
        return re.search(r"\s+".join(re.escape(w) for w in part), passage)

    whole = find(words)
    if whole is not None:
        return whole.span()
    head, tail = find(words[:5]), find(words[-5:])
    if head is not None and tail is not None and tail.end() > head.start():
        return head.start(), tail.end()
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _separated(before: str, after: str) -> bool:
    """Whether the text *before* and *after* a boundary are apart as sentences or lines of structure."""
    if not before.strip() or not after.strip() or _CLOSED.search(before.rstrip()):
        return True
    gap = before[len(before.rstrip()) :] + after[: len(after) - len(after.lstrip())]
    if _BLANK_LINE.search(gap):
        return True
    if "\n" not in gap:
        return False
    previous_line = before.rstrip().rsplit("\n", 1)[-1]
    # The line the text after the boundary is on, with its indentation.
    next_line = gap.rsplit("\n", 1)[-1] + after.lstrip().split("\n", 1)[0]
    return bool(_ITEM.match(next_line)) or abs(_indent(previous_line) - _indent(next_line)) >= 2


def _cut(piece: str, passages: list[str]) -> bool:
    for passage in passages:
        span = _locate(piece, passage)
        if span is None:
            continue
        start, end = span
        return not (_separated(passage[:start], passage[start:]) and _separated(passage[:end], passage[end:]))
    return False  # not found verbatim (defanged): nothing to judge it by


def check_answer(question_id: str, question: str, answer: Answer, gold: str) -> AnswerCheck:
    """The checks of one answer against its question and gold passage (see the module docstring)."""
    pieces = [] if answer.answer == NO_ANSWER else _pieces(answer.answer)
    cut = [
        piece
        for piece, cited in pieces
        if _cut(piece, [answer.citations[n - 1].text for n in cited if 1 <= n <= len(answer.citations)])
    ]
    return AnswerCheck(
        question_id=question_id,
        question=question,
        answer=answer.answer,
        gold_quoted=any(_from_gold(piece, gold) for piece, _ in pieces),
        question_echoed=any(_echoes(piece, question) for piece, _ in pieces),
        cut_sentences=cut,
        citations=len(answer.citations),
        supported=sum(1 for c in answer.citations if c.supported),
    )


def _rate(checks: list[AnswerCheck], test: Callable[[AnswerCheck], bool]) -> float:
    return round(sum(1 for c in checks if test(c)) / len(checks), 4) if checks else 0.0


def summarize(checks: list[AnswerCheck]) -> dict[str, float]:
    """The rates over all questions; ``citations_supported`` is over all citations."""
    citations = sum(c.citations for c in checks)
    return {
        "gold_quoted": _rate(checks, lambda c: c.gold_quoted),
        "question_echoed": _rate(checks, lambda c: c.question_echoed),
        "cut_sentences": _rate(checks, lambda c: bool(c.cut_sentences)),
        "no_answer": _rate(checks, lambda c: c.no_answer),
        "citations_supported": round(sum(c.supported for c in checks) / citations, 4) if citations else 1.0,
    }


def run_answer_eval(
    dataset: EvalDataset,
    *,
    settings: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Ingest *dataset* into a scratch home, ask every question that has a gold answer, and report.

    The JSON `cairn eval --answers` prints: the rates, the time per question, and up to ten
    questions that missed the gold answer, echoed the question, cut a sentence or had a citation
    that verification did not support.
    """
    asked = {q: text for q, text in dataset.queries.items() if q in dataset.answers}
    if not asked:
        raise ValueError(f"{dataset.name} has no gold answers; an answer set needs answers.jsonl")
    started = time.perf_counter()
    checks: list[AnswerCheck] = []
    with EvalSession(dataset, settings=settings) as session:
        ingest = session.ingest()
        asking = time.perf_counter()
        for done, (question_id, question) in enumerate(asked.items(), start=1):
            answer = session.ask(question)
            checks.append(check_answer(question_id, question, answer, dataset.answers[question_id]))
            if progress is not None:
                progress(done, len(asked))
        seconds = time.perf_counter() - asking
    missed = [
        c for c in checks if not c.gold_quoted or c.question_echoed or c.cut_sentences or c.supported < c.citations
    ]
    return {
        "dataset": dataset.name,
        "questions": len(checks),
        "corpus_documents": dataset.corpus_size,
        "ingest": ingest,
        "answers": {**summarize(checks), "ms_per_question": round(1000 * seconds / len(checks), 1)},
        "examples": [asdict(c) for c in missed[:_EXAMPLES]],
        "seconds": round(time.perf_counter() - started, 2),
    }
