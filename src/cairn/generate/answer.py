"""Answers as streams: text pieces while the answer is produced, then the verified `Answer`.

An LLM numbers its citations after the passages of the prompt ([4] is the fourth passage); the
answer numbers them after the citations it returns, in order of first use, so ``[1]`` is always
``citations[0]``. `CitedTextStream` does that renumbering while the text streams, drops marks that
name no passage (a fabricated ``[9]`` when eight were given) and removes links, sentence by
sentence, so what a client shows is what the final answer says. Verification then scores every
citation (`cairn.generate.verify`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from cairn.embed.base import Embedder
from cairn.generate.extractive import NO_ANSWER, extractive_answer
from cairn.generate.llm import ChatModel
from cairn.generate.prompt import TokenCounter, build_prompt
from cairn.generate.safety import defang
from cairn.generate.verify import MARKER, CitationPolicy, split_sentences, verify_answer
from cairn.models import Answer, Citation, SearchHit

__all__ = ["AnswerStream", "CitedTextStream", "extractive_stream", "llm_stream"]

# Where a streamed piece may end: after a sentence's punctuation or its citation mark, or a line break.
_SAFE_END = re.compile(r"[.!?\]][ \t]+|\n")
_MAX_BUFFER = 600
_NO_ANSWER_WORDS = re.sub(r"\W+", " ", NO_ANSWER.lower()).strip()


class CitedTextStream:
    """Rewrites a model's streamed text, one sentence at a time (see the module docstring)."""

    def __init__(self, passages: int) -> None:
        self._passages = passages
        self._buffer = ""
        self.numbers: dict[int, int] = {}  # passage number in the prompt -> citation number in the answer
        self.invented: list[int] = []

    def feed(self, piece: str) -> str:
        self._buffer += piece
        cut = max((m.end() for m in _SAFE_END.finditer(self._buffer)), default=0)
        if not cut and len(self._buffer) < _MAX_BUFFER:
            return ""
        cut = cut or len(self._buffer)
        ready, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return self._render(ready)

    def flush(self) -> str:
        ready, self._buffer = self._buffer, ""
        return self._render(ready)

    def _render(self, text: str) -> str:
        return MARKER.sub(self._renumber, defang(text))

    def _renumber(self, mark: re.Match[str]) -> str:
        kept: list[int] = []
        for number in (int(n) for n in mark.group(1).split(",")):
            if 1 <= number <= self._passages:
                kept.append(self.numbers.setdefault(number, len(self.numbers) + 1))
            else:
                self.invented.append(number)
        lead = mark.group(0)[: mark.group(0).index("[")]
        return f"{lead}[{', '.join(str(n) for n in dict.fromkeys(kept))}]" if kept else ""


class AnswerStream:
    """Iterate for the answer's text pieces; `result` gives the verified `Answer` (consuming the rest)."""

    def __init__(self, pieces: Iterator[str], finish: Callable[[str], Answer]) -> None:
        self._pieces = pieces
        self._finish = finish
        self._text: list[str] = []
        self._answer: Answer | None = None

    @classmethod
    def of(cls, answer: Answer) -> AnswerStream:
        """A stream of an answer that is already complete, one sentence per piece."""
        pieces: list[str] = []
        for part in split_sentences(answer.answer):
            if pieces and not part.strip():
                pieces[-1] += part  # a separator travels with the sentence before it
            else:
                pieces.append(part)
        return cls(iter(pieces), lambda _: answer)

    def __iter__(self) -> Iterator[str]:
        for piece in self._pieces:
            self._text.append(piece)
            yield piece
        if self._answer is None:
            self._answer = self._finish("".join(self._text))

    def result(self) -> Answer:
        for _ in self:
            pass
        assert self._answer is not None
        return self._answer


def extractive_stream(
    question: str,
    hits: Sequence[SearchHit],
    embedder: Embedder,
    *,
    min_support: float,
    policy: CitationPolicy,
    warnings: Sequence[str] = (),
) -> AnswerStream:
    """The offline answer: cited sentences quoted from the passages, verified like any other."""
    answer = extractive_answer(question, hits, embedder)
    answer = answer.model_copy(update={"warnings": [*warnings, *answer.warnings]})
    return AnswerStream.of(verify_answer(answer, embedder, min_support=min_support, policy=policy))


def llm_stream(
    question: str,
    hits: Sequence[SearchHit],
    embedder: Embedder,
    llm: ChatModel,
    *,
    count_tokens: TokenCounter,
    context_tokens: int,
    answer_tokens: int,
    min_support: float,
    policy: CitationPolicy,
    warnings: Sequence[str] = (),
    asked: str | None = None,
) -> AnswerStream:
    """An LLM's answer from the passages that fit its context; the request is sent before this returns."""
    if not hits:  # no evidence: nothing for a model to ground an answer on
        return AnswerStream.of(Answer(answer=NO_ANSWER, citations=[], generator=llm.model_name, warnings=[*warnings]))
    prompt = build_prompt(
        question,
        hits,
        count_tokens=count_tokens,
        context_tokens=context_tokens,
        answer_tokens=answer_tokens,
        asked=asked,
    )
    raw = llm.stream(prompt.messages, max_tokens=answer_tokens)
    cited = CitedTextStream(len(prompt.hits))

    def pieces() -> Iterator[str]:
        for piece in raw:
            if ready := cited.feed(piece):
                yield ready
        if rest := cited.flush():
            yield rest

    def finish(text: str) -> Answer:
        notes = [
            *warnings,
            *(f"[{n}] named no passage (only {len(prompt.hits)} were given) and was removed" for n in cited.invented),
        ]
        text = text.strip()
        words = re.sub(r"\W+", " ", MARKER.sub("", text).lower()).strip()
        if not text or (_NO_ANSWER_WORDS in words and not cited.numbers):
            return Answer(answer=NO_ANSWER, citations=[], generator=llm.model_name, warnings=notes)
        order = sorted(cited.numbers, key=cited.numbers.__getitem__)
        if not order:
            notes.append("the model's answer cites no passage; treat it as unverified")
        answer = Answer(
            answer=text,
            citations=[Citation.of(prompt.hits[n - 1]) for n in order],
            generator=llm.model_name,
            warnings=notes,
        )
        return verify_answer(answer, embedder, min_support=min_support, policy=policy)

    return AnswerStream(pieces(), finish)
