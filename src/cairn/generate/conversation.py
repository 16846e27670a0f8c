"""Conversations: a follow-up question becomes a standalone query before retrieval.

"Does it need a note?" retrieves nothing useful on its own; after "How many days of sick leave do
we get?" it means "Does sick leave need a note?". With an LLM configured, the model rewrites the
follow-up using the conversation. Without one, a rule decides: a question that leans on earlier
turns (a pronoun or demonstrative, an opening "and"/"what about", or only a word or two of
content) is extended with the content words of the previous user question that it lacks.
A question that stands on its own is used as it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cairn.generate.extractive import content_words
from cairn.generate.llm import ChatMessage, ChatModel
from cairn.generate.safety import defang

__all__ = ["Turn", "standalone_query"]

_REFERRING = frozenset(
    {"it", "its", "they", "them", "their", "this", "that", "these", "those", "there"}
    | {"he", "she", "him", "her", "his", "one", "ones", "former", "latter", "same"}
)
_FOLLOW_UP_OPENERS = re.compile(r"^\s*(and|also|what about|how about|what if|then|so|but)\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
_REWRITE_PROMPT = (
    "Rewrite the user's last question as one standalone search query that can be understood without the "
    "conversation. Keep the user's language and key terms. Reply with the query only, no quotes or comments."
)
# Turns of the conversation the rewrite sees; older ones rarely change what a follow-up means.
_MAX_TURNS = 6


@dataclass(frozen=True)
class Turn:
    """One earlier message of a conversation."""

    role: Literal["user", "assistant"]
    content: str


def _leans_on_context(question: str) -> bool:
    words = [w.lower() for w in _WORD.findall(question)]
    return (
        any(w in _REFERRING for w in words)
        or bool(_FOLLOW_UP_OPENERS.match(question))
        or len(content_words(question)) <= 2
    )


def _rule_based(question: str, history: Sequence[Turn]) -> str:
    previous = next((t.content for t in reversed(history) if t.role == "user" and t.content.strip()), None)
    if previous is None or not _leans_on_context(question):
        return question
    wanted = content_words(previous) - content_words(question)
    # In the order the earlier question used them, so the query still reads as words of that question.
    missing = [w for w in dict.fromkeys(w.lower() for w in _WORD.findall(previous)) if w in wanted]
    return f"{question.strip()} {' '.join(missing)}".strip() if missing else question


def standalone_query(question: str, history: Sequence[Turn], llm: ChatModel | None = None) -> str:
    """*question* made to stand on its own, given the earlier *history* (oldest first)."""
    if not any(t.content.strip() for t in history):
        return question
    if llm is None:
        return _rule_based(question, history)
    transcript = "\n".join(f"{t.role}: {defang(t.content)[:2000]}" for t in history[-_MAX_TURNS:])
    messages: list[ChatMessage] = [
        {"role": "system", "content": _REWRITE_PROMPT},
        {"role": "user", "content": f"Conversation:\n{transcript}\n\nLast question: {question}"},
    ]
    rewritten = " ".join(llm.complete(messages, max_tokens=96).split()).strip().strip('"')
    # A model that answers instead of rewriting, or says nothing, is not a query.
    return rewritten if 0 < len(rewritten) <= 4 * len(question) + 400 else question
