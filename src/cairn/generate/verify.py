"""Citation verification: does the passage a sentence cites actually say what the sentence says?

Every sentence of an answer that carries ``[n]`` is checked against passage *n*:

- **lexical support**: the share of the sentence's content words (crudely stemmed) that occur in
  the passage;
- **embedding support**: the best cosine similarity between the sentence and the passage or one
  of its sentences, with the embedding model the collection was built with;
- **numbers**: a number in the sentence that the passage never states caps support at
  `NUMBER_CAP`, since a changed figure is the typical fabrication that reads as on topic;
- **polarity**: a sentence that negates what its closest passage sentence affirms, or the reverse,
  is capped the same way. "unpaid" against "paid" and "does not need" against "needs" share nearly
  every word and most of their meaning for an embedding model, so neither support score sees them.
  A negation is a cue word ("not", "never", "no", "without", "n't" …) or a word that the other text
  has without its "un"/"non" prefix.

``support`` = (lexical + embedding) / 2, in [0, 1]. A citation is ``supported`` when every
sentence citing it reaches ``min_support``. With the ``drop`` policy, unsupported ``[n]`` marks are
removed, a sentence left with no supporting citation is removed, and the remaining citations are
renumbered; with ``flag`` the text stays and the citation says ``supported: false``. Either way
the answer's ``warnings`` name each unsupported claim.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cairn.embed.base import Embedder
from cairn.generate.extractive import NO_ANSWER, content_words
from cairn.models import Answer, Citation
from cairn.sentences import prose_sentences, text_units

__all__ = ["MARKER", "NUMBER_CAP", "CitationPolicy", "claim_support", "split_sentences", "verify_answer"]

CitationPolicy = Literal["flag", "drop"]
MARKER = re.compile(r"\s?\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
NUMBER_CAP = 0.25
# A sentence ends after . ! or ? (unless citation marks follow) or after its marks, and at line breaks.
# Only a citation mark ("[2]", "[1, 3]") ends one: "[link removed]" inside a sentence does not.
_BOUNDARY = re.compile(r"((?<=[.!?])[ \t]+(?!\[\d)|(?<=\d\])[ \t]+(?!\[\d)|\s*\n\s*)")
_CLAIM_END = re.compile(r"(?<=[.!?])\s+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_NEGATIONS = frozenset({"not", "no", "never", "none", "nor", "neither", "without", "cannot", "nobody", "nothing"})
_NEGATING_PREFIXES = ("non", "un")


@dataclass
class _Sentence:
    text: str
    claim: str
    cited: list[int]


def split_sentences(text: str) -> list[str]:
    """*text* cut into sentences, each keeping its citation marks; separators are kept as items too."""
    return [piece for piece in _BOUNDARY.split(text) if piece]


def _cited(numbers: str) -> list[int]:
    return [int(n) for n in numbers.split(",")]


def _parse(piece: str) -> _Sentence:
    cited = [n for m in MARKER.finditer(piece) for n in _cited(m.group(1))]
    return _Sentence(text=piece, claim=MARKER.sub("", piece).strip(), cited=list(dict.fromkeys(cited)))


def _stems(text: str) -> set[str]:
    # Five letters conflate the common inflections (employee/employees, parental/parent's).
    return {w[:5] for w in content_words(text)}


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _negated(words: list[str]) -> bool:
    """Whether an odd number of negation cues occurs ("not" once negates; "not … without" does not)."""
    cues = sum(1 for w in words if w in _NEGATIONS or w.endswith("n't"))
    return cues % 2 == 1


def _prefix_flip(claim: set[str], source: set[str]) -> bool:
    """A word one text has with a negating prefix and the other has without it ("unpaid" / "paid")."""
    for one, other in ((claim, source), (source, claim)):
        for word in one - other:
            for prefix in _NEGATING_PREFIXES:
                stem = word.removeprefix(prefix).lstrip("-")
                if stem != word and len(stem) >= 4 and stem in other:
                    return True
    return False


def _opposes(claim: str, source: str) -> bool:
    claim_words, source_words = _words(claim), _words(source)
    return _negated(claim_words) != _negated(source_words) or _prefix_flip(set(claim_words), set(source_words))


def _passage_sentences(passage: str) -> list[str]:
    """The passage's units (`cairn.sentences`) and the sentences inside each (a list item may hold
    several): a claim is compared with the closest of them."""
    found: list[str] = []
    for unit in text_units(passage):
        found.append(unit.text)
        found.extend(prose_sentences(unit.text))
        # Claims are cut where `split_sentences` cuts them; compare them with pieces cut the same way.
        found.extend(_CLAIM_END.split(unit.text))
    return list(dict.fromkeys(s for s in found if len(s.split()) >= 3))


def claim_support(claims: Sequence[str], passages: Sequence[str], embedder: Embedder) -> list[float]:
    """Support in [0, 1] of each claims[i] by passages[i]."""
    if not claims:
        return []
    pieces: list[list[str]] = [[passage, *_passage_sentences(passage)] for passage in passages]
    # Several claims often cite one passage: embed each distinct text once.
    texts = list(dict.fromkeys([*claims, *(p for group in pieces for p in group)]))
    vectors = embedder.embed_documents(texts)
    row = {text: i for i, text in enumerate(texts)}
    scores: list[float] = []
    for claim, passage, group in zip(claims, passages, pieces, strict=True):
        similarities = vectors[[row[p] for p in group]] @ vectors[row[claim]]
        semantic = float(np.clip(np.max(similarities), 0.0, 1.0))
        closest = group[int(np.argmax(similarities))]  # the passage itself, or its sentence nearest the claim
        words = _stems(claim)
        lexical = len(words & _stems(passage)) / len(words) if words else semantic
        support = (lexical + semantic) / 2
        if not _numbers(claim) <= _numbers(passage) or _opposes(claim, closest):
            support = min(support, NUMBER_CAP)
        scores.append(round(support, 3))
    return scores


def verify_answer(
    answer: Answer, embedder: Embedder, *, min_support: float = 0.5, policy: CitationPolicy = "flag"
) -> Answer:
    """*answer* with each citation's ``support`` and ``supported`` set, per *policy* (see the module)."""
    if answer.answer == NO_ANSWER or not answer.citations:
        return answer
    pieces = [_parse(piece) for piece in split_sentences(answer.answer)]
    citations = answer.citations
    pairs = [(i, n) for i, s in enumerate(pieces) for n in s.cited if 1 <= n <= len(citations) and s.claim]
    scores = claim_support([pieces[i].claim for i, _ in pairs], [citations[n - 1].text for _, n in pairs], embedder)
    support: dict[int, float] = {}
    weak: set[tuple[int, int]] = set()
    warnings = list(answer.warnings)
    for (i, n), score in zip(pairs, scores, strict=True):
        support[n] = min(support.get(n, 1.0), score)
        if score < min_support:
            weak.add((i, n))
            warnings.append(f"[{n}] does not support {pieces[i].claim!r} (support {score:.2f})")
    checked = [
        c.model_copy(update={"support": support.get(n, 0.0), "supported": support.get(n, 0.0) >= min_support})
        for n, c in enumerate(citations, start=1)
    ]
    if policy == "flag" or not weak:
        return answer.model_copy(update={"citations": checked, "warnings": warnings})
    return _drop(pieces, checked, weak, warnings, answer)


def _drop(
    pieces: list[_Sentence], citations: list[Citation], weak: set[tuple[int, int]], warnings: list[str], answer: Answer
) -> Answer:
    kept: list[str] = []
    numbers: dict[int, int] = {}
    for i, sentence in enumerate(pieces):
        if not sentence.cited:
            kept.append(sentence.text)
            continue
        good = [n for n in sentence.cited if (i, n) not in weak and 1 <= n <= len(citations)]
        if not good:
            warnings.append(f"dropped the unsupported sentence {sentence.claim!r}")
            continue
        for n in good:
            numbers.setdefault(n, len(numbers) + 1)
        marks = "".join(f" [{numbers[n]}]" for n in good)
        # Keep the sentence's own order of marks and punctuation: "claim [1]." or "claim. [1]".
        stripped = sentence.text.rstrip()
        bare = MARKER.sub("", stripped).rstrip()
        if stripped.endswith("]") or not bare or bare[-1] not in ".!?":
            kept.append(f"{bare}{marks}")
        else:
            kept.append(f"{bare[:-1]}{marks}{bare[-1]}")
    text = re.sub(r"\s*\n\s*\n+", "\n", "".join(kept)).strip()
    # Separators between dropped sentences would leave doubled spaces.
    text = re.sub(r"[ \t]{2,}", " ", text)
    order = sorted(numbers, key=numbers.__getitem__)
    return answer.model_copy(
        update={
            "answer": text or NO_ANSWER,
            "citations": [citations[n - 1] for n in order] if text else [],
            "warnings": warnings,
        }
    )
