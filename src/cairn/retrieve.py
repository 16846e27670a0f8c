"""Retrieval steps that run after the engine: exact-phrase promotion.

Hybrid fusion (`cairn.index.fusion`) rewards chunks that both legs like, so a chunk that contains
the user's exact words but is only keyword-relevant can fall below chunks that are merely on topic
(weighted fusion keeps the keyword leg's best chunk in the first three, no more). When a
multi-word query occurs verbatim (ignoring case and spacing) in a candidate, that candidate is
what the user is looking for: it moves to the front, keeping the fused order among equals.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cairn.models import SearchHit

__all__ = ["candidate_pool", "promote_exact_phrases"]

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")


def candidate_pool(k: int) -> int:
    """How many fused candidates to fetch so phrase promotion can reach past rank *k*."""
    return max(k * 3, 30)


def _normalize(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def promote_exact_phrases(query: str, hits: Sequence[SearchHit], k: int) -> list[SearchHit]:
    """The first *k* of *hits*, with those containing *query* verbatim moved to the front."""
    phrase = _normalize(query)
    if len(_WORD.findall(phrase)) < 2:
        return list(hits[:k])
    exact = [h for h in hits if phrase in _normalize(h.text)]
    if not exact:
        return list(hits[:k])
    chosen = {h.chunk_id for h in exact}
    return [*exact, *(h for h in hits if h.chunk_id not in chosen)][:k]
