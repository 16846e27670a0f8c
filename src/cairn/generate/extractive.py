"""The extractive answerer: the sentences of the retrieved passages that best answer the question.

Each candidate sentence is scored by its embedding similarity to the question, blended with how
many of the question's content words it contains; the best few, excluding near-duplicates, form
the answer, each followed by the number of its citation. When no sentence is close enough, the
answer says the documents do not answer the question instead of guessing.

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

from cairn.chunking import SENTENCE_END
from cairn.embed.base import Embedder
from cairn.generate.safety import PLANTED_INSTRUCTION_WARNING, defang, is_planted_instruction
from cairn.models import Answer, Citation, SearchHit

__all__ = ["NO_ANSWER", "content_words", "extractive_answer"]

NO_ANSWER = "The indexed documents do not appear to answer this question."
# Sentence ends as the chunker finds them, and also line breaks (headings, list items, table rows).
_SENTENCE = re.compile(SENTENCE_END.pattern + r"|\n+")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
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
_MIN_SIMILARITY = 0.25
# Sentences after the best one must score at least this fraction of it, so weak ones do not pad.
_RELATIVE_FLOOR = 0.8


@dataclass(frozen=True)
class _Candidate:
    text: str
    hit: int
    position: int


def content_words(text: str) -> set[str]:
    """The lowercased words of *text* that carry meaning (stopwords removed)."""
    return {w.lower() for w in _WORD.findall(text)} - _STOPWORDS


def _candidates(hits: Sequence[SearchHit]) -> list[_Candidate]:
    found: list[_Candidate] = []
    seen: set[str] = set()
    for h, hit in enumerate(hits):
        for p, raw in enumerate(_SENTENCE.split(hit.text)):
            sentence = " ".join(raw.split())
            words = len(_WORD.findall(sentence))
            # Short lines without closing punctuation are headings or labels, not statements.
            statement = sentence.rstrip("\"')]").endswith((".", "!", "?", ":", ";")) or words >= 8
            if 4 <= words <= 80 and statement and sentence.lower() not in seen:
                seen.add(sentence.lower())
                found.append(_Candidate(sentence, h, p))
    return found


def extractive_answer(
    question: str, hits: Sequence[SearchHit], embedder: Embedder, *, max_sentences: int = 3
) -> Answer:
    """Answer *question* with cited sentences from *hits* (best first), leaving out planted instructions."""
    warnings = [PLANTED_INSTRUCTION_WARNING] if any(is_planted_instruction(hit.text) for hit in hits) else []
    candidates = [c for c in _candidates(hits) if not is_planted_instruction(c.text)]
    if not candidates:
        return Answer(answer=NO_ANSWER, citations=[], warnings=warnings)
    question_vector = embedder.embed_query(question)
    vectors = embedder.embed_documents([c.text for c in candidates])
    similarity = vectors @ question_vector
    asked = content_words(question)
    overlap = np.array(
        [len(asked & content_words(c.text)) / len(asked) if asked else 0.0 for c in candidates], dtype=np.float32
    )
    # Earlier hits were ranked higher by retrieval; a small prior keeps that signal.
    prior = np.array([1.0 / (1 + c.hit) for c in candidates], dtype=np.float32)
    score = 0.7 * similarity + 0.25 * overlap + 0.05 * prior
    chosen: list[int] = []
    for index in np.argsort(-score):
        if len(chosen) == max_sentences:
            break
        if similarity[index] < _MIN_SIMILARITY or (chosen and score[index] < _RELATIVE_FLOOR * score[chosen[0]]):
            break
        words = content_words(candidates[index].text)
        if any(_jaccard(words, content_words(candidates[j].text)) > 0.6 for j in chosen):
            continue
        chosen.append(int(index))
    if not chosen:
        return Answer(answer=NO_ANSWER, citations=[], warnings=warnings)
    chosen = _with_list_items(chosen, candidates)
    citations: list[Citation] = []
    numbers: dict[int, int] = {}
    parts: list[str] = []
    for index in chosen:
        candidate = candidates[index]
        if candidate.hit not in numbers:
            hit = hits[candidate.hit]
            citations.append(Citation.of(hit))
            numbers[candidate.hit] = len(citations)
        parts.append(f"{defang(candidate.text)} [{numbers[candidate.hit]}]")
    return Answer(answer=" ".join(parts), citations=citations, warnings=warnings)


def _with_list_items(chosen: list[int], candidates: Sequence[_Candidate], limit: int = 8) -> list[int]:
    """After a chosen sentence that introduces a list (ends with ':'), keep the items that follow it."""
    result: list[int] = []
    for index in chosen:
        if index in result:
            continue
        result.append(index)
        if not candidates[index].text.endswith(":"):
            continue
        follow = index + 1
        while follow < len(candidates) and follow - index <= limit and candidates[follow].hit == candidates[index].hit:
            if follow not in result:
                result.append(follow)
            follow += 1
    return result


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0
