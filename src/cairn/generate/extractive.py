"""The extractive answerer: whole sentences of the retrieved passages that answer the question.

Passages are read as a reader sees them (`cairn.sentences`): wrapped lines joined, sentences
whole, headings, list items, table rows and code as units of their own. Questions are context,
never the answer:

1. **Question and answer structures.** When a passage asks a question that matches the one asked
   (an FAQ's "Q:" line, a numbered question, a heading or title phrased as a question), the answer
   is what follows that question, up to the next question or heading: its first sentences, in
   source order.
2. **Otherwise** each statement is scored by its embedding similarity to the question, blended with
   how many of the question's content words it contains. The best statement opens a run of
   consecutive statements of its passage, in source order; a second run from another passage is
   added only when it scores nearly as well. Interrogative sentences are never chosen.
3. **Nothing close enough:** the answer says that the documents do not answer the question.

A sentence that addresses the reader or the assistant with instructions (prompt injection, see
`cairn.generate.safety.is_planted_instruction`) is never chosen, however well it matches: the
answer would otherwise present a planted order as the documents' word. The answer's warnings say
that such a passage was found.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cairn.embed.base import Embedder
from cairn.generate.safety import PLANTED_INSTRUCTION_WARNING, defang, is_planted_instruction
from cairn.models import Answer, Citation, SearchHit
from cairn.sentences import UnitKind, is_question, text_units

__all__ = ["NO_ANSWER", "content_words", "extractive_answer"]

NO_ANSWER = "The indexed documents do not appear to answer this question."
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
_ANSWER_LABEL = re.compile(r"^(?:A\d*\s*[:.)]|Answer\s*:)\s*", re.IGNORECASE)
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "get",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "should",
        "the",
        "their",
        "there",
        "this",
        "to",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)
# Similarity below which a sentence is not evidence for the question (MiniLM cosine scale).
_MIN_SIMILARITY = 0.32
# A passage's question matches the one asked from this blended score on (word-for-word is ~1.0).
_QUESTION_MATCH = 0.75
# A second run must score at least this fraction of the best one, so weak runs do not pad.
_RELATIVE_FLOOR = 0.8
# A sentence continues a run when it scores at least this fraction of the run's best sentence.
_RUN_FLOOR = 0.55
_STATEMENTS: frozenset[UnitKind] = frozenset({"sentence", "list_item", "table_row"})
_MIN_QUOTED_WORDS = 3  # shorter sentences ("No.") travel with the next one
_MAX_INTRODUCED = 8  # list items, steps or code that a sentence ending in ':' introduces


@dataclass(frozen=True)
class _Unit:
    text: str
    kind: UnitKind
    hit: int
    position: int  # index among the units of its hit


def content_words(text: str) -> set[str]:
    """The lowercased words of *text* that carry meaning (stopwords removed)."""
    return {w.lower() for w in _WORD.findall(text)} - _STOPWORDS


def _units(hits: Sequence[SearchHit]) -> list[list[_Unit]]:
    """Each hit's units in source order, answer labels ("A:") removed from the text shown."""
    found: list[list[_Unit]] = []
    for h, hit in enumerate(hits):
        pieces: list[tuple[str, UnitKind]] = []
        for unit in text_units(hit.text):
            text = _ANSWER_LABEL.sub("", unit.text) if unit.kind == "sentence" else unit.text
            if text:
                pieces.append((text, unit.kind))
        heading = hit.location.heading_path[-1] if hit.location.heading_path else ""
        if heading and is_question(heading):
            if pieces and _same(pieces[0][0], heading):
                pieces[0] = (heading, "question")
            else:  # a title or subject phrased as a question that the passage's text does not repeat
                pieces.insert(0, (heading, "question"))
        found.append([_Unit(text, kind, h, i) for i, (text, kind) in enumerate(pieces)])
    return found


def _same(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def _quotable(unit: _Unit) -> bool:
    words = len(_WORD.findall(unit.text))
    return unit.kind in _STATEMENTS and 1 <= words <= 120 and not is_planted_instruction(unit.text)


class _Scorer:
    """Blended relevance of texts to the question: embedding similarity and content-word overlap."""

    def __init__(self, question: str, embedder: Embedder) -> None:
        self._embedder = embedder
        self._vector = embedder.embed_query(question)
        self._asked = content_words(question)

    def score(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if not texts:
            empty = np.zeros(0, dtype=np.float32)
            return empty, empty
        similarity = self._embedder.embed_documents(list(texts)) @ self._vector
        asked = self._asked
        overlap = np.array(
            [len(asked & content_words(t)) / len(asked) if asked else 0.0 for t in texts], dtype=np.float32
        )
        return 0.7 * similarity + 0.3 * overlap, similarity


def _questions(passages: Sequence[Sequence[_Unit]]) -> list[tuple[int, int, int, str]]:
    """Each question element as (hit, first unit, last unit, text): consecutive question units, or
    consecutive heading units (a heading that matches the question well is answered by its section)."""
    found: list[tuple[int, int, int, str]] = []
    for h, units in enumerate(passages):
        start = 0
        for i in range(1, len(units) + 1):
            if i < len(units) and units[i].kind == units[start].kind:
                continue
            if units[start].kind in ("question", "heading"):
                found.append((h, start, i - 1, " ".join(u.text for u in units[start:i])))
            start = i
    return found


def _after_question(units: Sequence[_Unit], last: int, limit: int) -> list[int]:
    """The statements that answer the question ending at unit *last*: up to the next question or heading."""
    for first in range(last + 1, len(units)):
        unit = units[first]
        if unit.kind in ("question", "heading"):
            return []
        if _quotable(unit):  # code right after the question is its example ("fails with this:")
            scores = {i: 1.0 for i in range(first, len(units)) if _quotable(units[i])}
            return _run(units, first, scores, limit)
    return []


def _counted(units: Sequence[_Unit], chosen: Sequence[int]) -> int:
    """Sentences an answer holds: a short one ("No.") and what a ':' sentence introduces count with their lead."""
    count = 0
    introduced = False
    for i in chosen:
        if not introduced and len(_WORD.findall(units[i].text)) >= _MIN_QUOTED_WORDS:
            count += 1
        introduced = introduced or units[i].text.endswith(":")
    return count


def _run(units: Sequence[_Unit], start: int, scores: dict[int, float], limit: int) -> list[int]:
    """Consecutive statements from *start* on, while they stay on topic (or are what a ':' introduces)."""
    chosen = [start]
    best = scores[start]
    introduced = 0
    for i in range(start + 1, len(units)):
        unit = units[i]
        if unit.kind in ("question", "heading"):
            break
        if any(units[j].text.endswith(":") for j in chosen):
            if introduced == _MAX_INTRODUCED or not (_quotable(unit) or unit.kind == "code"):
                break
            chosen.append(i)
            introduced += 1
        elif _counted(units, chosen) < limit and i in scores and scores[i] >= _RUN_FLOOR * best:
            chosen.append(i)
        else:
            break
    return chosen


def extractive_answer(
    question: str, hits: Sequence[SearchHit], embedder: Embedder, *, max_sentences: int = 3
) -> Answer:
    """Answer *question* with cited whole sentences from *hits* (best first), leaving out planted instructions."""
    warnings = [PLANTED_INSTRUCTION_WARNING] if any(is_planted_instruction(hit.text) for hit in hits) else []
    passages = _units(hits)
    scorer = _Scorer(question, embedder)
    runs = _question_answer(passages, scorer, max_sentences) or _best_runs(passages, scorer, max_sentences)
    if not runs:
        return Answer(answer=NO_ANSWER, citations=[], warnings=warnings)
    citations: list[Citation] = []
    numbers: dict[int, int] = {}
    parts: list[str] = []
    for h, indexes in runs:
        if h not in numbers:
            citations.append(Citation.of(hits[h]))
            numbers[h] = len(citations)
        pending = ""
        for i in indexes:
            text = " ".join(defang(passages[h][i].text).split())
            if len(_WORD.findall(text)) < _MIN_QUOTED_WORDS and i != indexes[-1]:
                pending += text + " "  # too short to stand (and be checked) alone
                continue
            parts.append(f"{pending}{text} [{numbers[h]}]")
            pending = ""
    return Answer(answer=" ".join(parts), citations=citations, warnings=warnings)


def _question_answer(passages: Sequence[Sequence[_Unit]], scorer: _Scorer, limit: int) -> list[tuple[int, list[int]]]:
    """The statements after the passage question that matches the one asked, if one does."""
    elements = _questions(passages)
    scores, _ = scorer.score([text for _, _, _, text in elements])
    for index in np.argsort(-scores):
        if scores[index] < _QUESTION_MATCH:
            break
        h, _, last, _ = elements[index]
        answer = _after_question(passages[h], last, limit)
        if answer:
            return [(h, answer)]
    return []


def _best_runs(passages: Sequence[Sequence[_Unit]], scorer: _Scorer, limit: int) -> list[tuple[int, list[int]]]:
    """Runs of consecutive statements around the best-scoring ones, best run first."""
    candidates = [u for units in passages for u in units if _quotable(u)]
    scores, similarity = scorer.score([u.text for u in candidates])
    by_hit: dict[int, dict[int, float]] = {}
    for unit, score in zip(candidates, scores, strict=True):
        by_hit.setdefault(unit.hit, {})[unit.position] = float(score)
    runs: list[tuple[int, list[int]]] = []
    quoted: list[set[str]] = []
    used = 0
    best = 0.0
    for index in np.argsort(-scores):
        unit = candidates[index]
        if similarity[index] < _MIN_SIMILARITY or (runs and scores[index] < _RELATIVE_FLOOR * best):
            break
        if used >= limit:
            break
        words = content_words(unit.text)
        if len(_WORD.findall(unit.text)) < 4 or any(_jaccard(words, seen) > 0.6 for seen in quoted):
            continue
        if any(h == unit.hit and unit.position in run for h, run in runs):
            continue
        best = best or float(scores[index])
        run = _run(passages[unit.hit], unit.position, by_hit[unit.hit], limit - used)
        runs.append((unit.hit, run))
        quoted.extend(content_words(passages[unit.hit][i].text) for i in run)
        used += max(_counted(passages[unit.hit], run), 1)
    return runs


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0
