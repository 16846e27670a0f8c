"""Retrievers for the frameworks people already use, over a local `Cairn` or a remote `cairn.Client`.

    from cairn.integrations.langchain import CairnRetriever      # a langchain_core BaseRetriever
    from cairn.integrations.llama_index import CairnRetriever    # a llama_index.core BaseRetriever

Each is imported on its own, and imports its framework, which cairn does not install (``pip install
langchain-core`` or ``llama-index-core``). Both carry the same citation metadata on every passage
(`citation_metadata`), so an answer built by the framework can still name its sources.
"""

from __future__ import annotations

from typing import Protocol

from cairn.index.milvus import SearchMode
from cairn.models import SearchHit, SearchResult

__all__ = ["Searcher", "citation_metadata"]


class Searcher(Protocol):
    """What a retriever searches: `cairn.Cairn` and `cairn.Client` both are one."""

    def search(
        self,
        query: str,
        *,
        collection: str | None = None,
        k: int = 10,
        mode: SearchMode = "hybrid",
        filter: str | dict[str, object] | list[object] | None = None,  # noqa: A002 - the API's word
    ) -> SearchResult: ...


def citation_metadata(hit: SearchHit) -> dict[str, str | int | float]:
    """What a framework's document carries to cite *hit*: where it is from, which version, and how well it matched."""
    return {
        "source": hit.source,
        "location": hit.location.label,
        "doc_id": hit.doc_id,
        "version": hit.version,
        "chunk_id": hit.chunk_id,
        "score": hit.score,
    }
