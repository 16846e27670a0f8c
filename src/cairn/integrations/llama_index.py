"""`CairnRetriever`: a LlamaIndex retriever over a local `Cairn` or a remote `cairn.Client`.

    from cairn import Cairn
    from cairn.integrations.llama_index import CairnRetriever
    from llama_index.core.query_engine import RetrieverQueryEngine

    engine = RetrieverQueryEngine.from_args(CairnRetriever(Cairn(), k=4), llm=my_llm)

Each node is one passage: a `TextNode` whose id is the chunk id, scored by the search, with the
citation metadata of `cairn.integrations.citation_metadata`. The LLM sees ``source`` and
``location`` with the text (so it can name them); ids, version and score are kept from the prompt
and the embedding text. Needs ``llama-index-core``, which cairn does not install.
"""

from __future__ import annotations

import logging

from llama_index.core.callbacks import CallbackManager
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from cairn.errors import InvalidRequest
from cairn.index.milvus import SearchMode
from cairn.integrations import Searcher, citation_metadata

__all__ = ["CairnRetriever"]

log = logging.getLogger(__name__)

# Metadata for citing, not for the model to read or the text to be embedded with.
_BOOKKEEPING = ["doc_id", "version", "chunk_id", "score"]


class CairnRetriever(BaseRetriever):
    """The *k* passages of *collection* that best match a query, as scored nodes with citation metadata.

    *cairn* is a `cairn.Cairn` (searched as the local host) or a `cairn.Client` (searched as its key);
    *mode* and *filter* are those of `Cairn.search`.
    """

    def __init__(
        self,
        cairn: Searcher,
        *,
        collection: str | None = None,
        k: int = 4,
        mode: SearchMode = "hybrid",
        filter: str | dict[str, object] | list[object] | None = None,  # noqa: A002 - the API's word
        callback_manager: CallbackManager | None = None,
    ) -> None:
        if not 1 <= k <= 100:
            raise InvalidRequest(f"k={k} is out of range; choose 1 to 100")
        self.cairn = cairn
        self.collection = collection
        self.k = k
        self.mode: SearchMode = mode
        self.filter = filter
        super().__init__(callback_manager=callback_manager)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        found = self.cairn.search(
            query_bundle.query_str, collection=self.collection, k=self.k, mode=self.mode, filter=self.filter
        )
        for warning in found.warnings:
            log.warning("cairn search: %s", warning)
        return [
            NodeWithScore(
                node=TextNode(
                    id_=hit.chunk_id,
                    text=hit.text,
                    metadata=citation_metadata(hit),
                    excluded_llm_metadata_keys=list(_BOOKKEEPING),
                    excluded_embed_metadata_keys=list(_BOOKKEEPING),
                ),
                score=hit.score,
            )
            for hit in found.hits
        ]
