"""`Generation`: the query-side steps after retrieval, configured once from `Settings`.

It owns the LLM client and the cross-encoder (both made on first use) and runs, for `Cairn`:
the follow-up rewrite of a conversation, reranking and diversification of hits, and the answer,
from the LLM when ``CAIRN_LLM_BASE_URL`` is set and extractively otherwise.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from cairn.embed.base import Embedder
from cairn.generate.answer import AnswerStream, extractive_stream, llm_stream
from cairn.generate.conversation import Turn, standalone_query
from cairn.generate.llm import ChatModel, OpenAICompatibleLLM
from cairn.generate.rerank import CrossEncoderReranker, RerankUnavailable, load_reranker, mmr_order
from cairn.models import SearchHit
from cairn.settings import Settings

__all__ = ["Generation", "Reordered"]

log = logging.getLogger(__name__)


class Reordered:
    """Hits after reranking and diversification, with a note for each step that was skipped."""

    def __init__(self, hits: list[SearchHit], warnings: list[str]) -> None:
        self.hits = hits
        self.warnings = warnings


class Generation:
    """Thread-safe; one per `Cairn`."""

    def __init__(self, settings: Settings, *, llm: ChatModel | None = None) -> None:
        self.settings = settings
        self._llm = llm
        self._reranker: CrossEncoderReranker | None = None
        self._rerank_problem: str | None = None
        self._lock = threading.Lock()

    @property
    def llm(self) -> ChatModel | None:
        """The configured LLM, or None for extractive answers."""
        settings = self.settings
        with self._lock:
            if self._llm is None and settings.llm_base_url is not None and settings.llm_model is not None:
                key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
                self._llm = OpenAICompatibleLLM(
                    base_url=settings.llm_base_url,
                    model=settings.llm_model,
                    api_key=key,
                    timeout_s=settings.llm_timeout_s,
                    max_retries=settings.llm_max_retries,
                )
            return self._llm

    def reranker(self) -> CrossEncoderReranker | str:
        """The cross-encoder, or the one message saying why reranking is skipped."""
        with self._lock:
            if self._reranker is None and self._rerank_problem is None:
                try:
                    self._reranker = load_reranker(self.settings.rerank_model, device=self.settings.embed_device)
                except RerankUnavailable as exc:
                    self._rerank_problem = str(exc)
                    log.warning("%s", exc)  # once per process: the outcome is remembered
            return self._reranker if self._reranker is not None else str(self._rerank_problem)

    def reorder(
        self, query: str, hits: Sequence[SearchHit], k: int, *, rerank: bool, diversify: bool, embedder: Embedder
    ) -> Reordered:
        """The best *k* of a wider candidate list, by cross-encoder and/or MMR."""
        warnings: list[str] = []
        ordered = list(hits)
        if rerank:
            reranker = self.reranker()
            if isinstance(reranker, str):
                warnings.append(reranker)
            else:
                ordered = reranker.rerank(query, ordered, len(ordered))
        if diversify:
            ordered = mmr_order(query, ordered, embedder, k)
        return Reordered(ordered[:k], warnings)

    def standalone(self, question: str, history: Sequence[Turn]) -> str:
        return standalone_query(question, history, self.llm)

    def answer(
        self,
        question: str,
        hits: Sequence[SearchHit],
        embedder: Embedder,
        *,
        asked: str | None = None,
        warnings: Sequence[str] = (),
    ) -> AnswerStream:
        """The answer to *question* from *hits*; *asked* is the user's wording when it was rewritten."""
        settings = self.settings
        llm = self.llm
        if llm is None:
            return extractive_stream(
                question,
                hits,
                embedder,
                min_support=settings.citation_min_support,
                policy=settings.citation_policy,
                warnings=warnings,
            )
        return llm_stream(
            question,
            hits,
            embedder,
            llm,
            count_tokens=embedder.count_tokens,
            context_tokens=settings.llm_context_tokens,
            answer_tokens=settings.llm_max_answer_tokens,
            min_support=settings.citation_min_support,
            policy=settings.citation_policy,
            warnings=warnings,
            asked=asked,
        )
