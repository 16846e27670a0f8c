"""`CairnRetriever`: a LangChain retriever over a local `Cairn` or a remote `cairn.Client`.

    from cairn import Cairn
    from cairn.integrations.langchain import CairnRetriever

    retriever = CairnRetriever(cairn=Cairn(), k=4)
    chain = retriever | (lambda docs: "\\n\\n".join(d.page_content for d in docs))

Each `Document` is one passage: its text, its chunk id as ``id``, and the citation metadata of
`cairn.integrations.citation_metadata` (``source``, ``location``, ``doc_id``, ``version``,
``chunk_id``, ``score``). Needs ``langchain-core``, which cairn does not install.
"""

from __future__ import annotations

import logging

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field, SkipValidation

from cairn.index.milvus import SearchMode
from cairn.integrations import Searcher, citation_metadata

__all__ = ["CairnRetriever"]

log = logging.getLogger(__name__)


class CairnRetriever(BaseRetriever):
    """The *k* passages of *collection* that best match a query, as LangChain documents with citation metadata.

    *cairn* is a `cairn.Cairn` (searched as the local host) or a `cairn.Client` (searched as its key);
    *mode* and *filter* are those of `Cairn.search`.
    """

    cairn: SkipValidation[Searcher]
    collection: str | None = None
    k: int = Field(default=4, ge=1, le=100)
    mode: SearchMode = "hybrid"
    filter: str | dict[str, object] | list[object] | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        found = self.cairn.search(query, collection=self.collection, k=self.k, mode=self.mode, filter=self.filter)
        for warning in found.warnings:
            log.warning("cairn search: %s", warning)
        return [Document(id=hit.chunk_id, page_content=hit.text, metadata=citation_metadata(hit)) for hit in found.hits]
