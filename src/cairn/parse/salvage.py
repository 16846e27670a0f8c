"""Local damage a parser worked around: what it left out or repaired, and where.

A parser that meets local damage (a cue with impossible times, a JSON Lines line that is not JSON,
a ragged CSV row, bytes that are not valid UTF-8) keeps everything it can read and calls `warn`
with a message that says what was left out and where: ``line 78: the cue ends ... before it
starts; the cue was left out``. `cairn.parse.parse_document` collects the warnings of each parse
(`collecting`) and files them under the file or member they belong to, and the ingest report lists
them per file. Outside `collecting` (a parser called directly) warnings are dropped.

Leaf parsers take only bytes, so the collector is a context variable rather than an argument:
the parser modules stay callable on their own, and nested members (a file in a ZIP in an email)
each get a collector of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["MAX_WARNINGS", "collecting", "summarised", "warn"]

# A file damaged throughout would otherwise fill the report with one line per bad record.
MAX_WARNINGS = 20

_collector: ContextVar[list[str] | None] = ContextVar("cairn_parse_warnings", default=None)


def warn(message: str) -> None:
    """Record that the parse going on skipped or repaired something; ``message`` says what and where."""
    collected = _collector.get()
    if collected is not None:
        collected.append(message)


@contextmanager
def collecting() -> Iterator[list[str]]:
    """Collect the warnings of the parse run inside the block (nested blocks collect their own)."""
    collected: list[str] = []
    token = _collector.set(collected)
    try:
        yield collected
    finally:
        _collector.reset(token)


def summarised(messages: list[str]) -> list[str]:
    """The first `MAX_WARNINGS` messages, and a last one counting those left out."""
    if len(messages) <= MAX_WARNINGS:
        return list(messages)
    hidden = len(messages) - MAX_WARNINGS
    return [*messages[:MAX_WARNINGS], f"and {hidden} more problem{'s' if hidden != 1 else ''} like these"]
