"""The LangChain and LlamaIndex retrievers, inside the frameworks' own chains and query engines.

The frameworks are the real ones (langchain-core and llama-index-core, installed with the bench extra). No
language model is needed to prove what the retrievers do: the LangChain chain ends in the prompt it would
send, and the LlamaIndex engine answers with `MockLLM`, the test double LlamaIndex ships, which echoes the
prompt it was given. Each runs over a local `Cairn` and over a `cairn.Client` of the service on the same home.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from tests.uvicorn_thread import served

from cairn import Cairn, Client
from cairn.http import create_app
from cairn.integrations import Searcher
from cairn.integrations.langchain import CairnRetriever as LangChainRetriever
from cairn.integrations.llama_index import CairnRetriever as LlamaIndexRetriever

pytestmark = pytest.mark.integration

QUESTION = "How many days of paid parental leave do employees get?"
CITATION_KEYS = {"source", "location", "doc_id", "version", "chunk_id", "score"}


@pytest.fixture
def searchers(cairn: Cairn, docs: Path) -> Iterator[dict[str, Searcher]]:
    """The ingested test documents, searchable through the local `Cairn` and through a reader's `Client`."""
    cairn.ingest([docs])
    token, _ = cairn.create_key(role="reader", tenant="default")
    with served(create_app(cairn, worker=False)) as url, Client(url, token) as client:
        yield {"local": cairn, "client": client}


def format_docs(documents: list[Document]) -> str:
    """Passages as a prompt shows them, each headed by its citation: ``[leave.md, Leave policy › ...]``."""
    return "\n\n".join(
        f"[{Path(str(d.metadata['source'])).name}, {d.metadata['location']}] {d.page_content}" for d in documents
    )


@pytest.mark.parametrize("over", ["local", "client"])
def test_langchain_retriever_in_an_lcel_chain_cites_its_sources(searchers: dict[str, Searcher], over: str) -> None:
    """`retriever | format_docs` inside a RAG prompt chain puts the passage that answers, headed by its source and
    location, in the prompt; each document carries the hit's citation metadata, equal to the search's own hit."""
    retriever = LangChainRetriever(cairn=searchers[over], k=2)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from these passages and cite them:\n\n{context}"), ("human", "{question}")]
    )
    chain = {"context": retriever | RunnableLambda(format_docs), "question": RunnablePassthrough()} | prompt

    shown = chain.invoke(QUESTION).to_string()
    assert "[leave.md, Leave policy › Parental leave" in shown
    assert "120 days of paid parental leave" in shown

    documents = retriever.invoke(QUESTION)
    hit = searchers["local"].search(QUESTION, k=2).hits[0]
    assert len(documents) == 2
    assert set(documents[0].metadata) == CITATION_KEYS
    assert documents[0].id == hit.chunk_id
    assert documents[0].page_content == hit.text
    assert documents[0].metadata == {
        "source": hit.source,
        "location": hit.location.label,
        "doc_id": hit.doc_id,
        "version": hit.version,
        "chunk_id": hit.chunk_id,
        "score": hit.score,
    }


@pytest.mark.parametrize("over", ["local", "client"])
def test_llama_index_retriever_in_a_query_engine_cites_its_sources(searchers: dict[str, Searcher], over: str) -> None:
    """A `RetrieverQueryEngine` over the retriever answers with source nodes carrying the citation metadata and
    scores of the search; the prompt its LLM received (echoed by `MockLLM`) names the source and location,
    but not the ids and scores kept for citing."""
    retriever = LlamaIndexRetriever(searchers[over], k=2)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())

    response = engine.query(QUESTION)
    hit = searchers["local"].search(QUESTION, k=2).hits[0]
    first = response.source_nodes[0]
    assert len(response.source_nodes) == 2
    assert (first.node.node_id, first.score, first.node.get_content()) == (hit.chunk_id, hit.score, hit.text)
    assert first.node.metadata == {
        "source": hit.source,
        "location": hit.location.label,
        "doc_id": hit.doc_id,
        "version": hit.version,
        "chunk_id": hit.chunk_id,
        "score": hit.score,
    }
    prompt = str(response)
    assert f"source: {hit.source}" in prompt
    assert f"location: {hit.location.label}" in prompt
    assert "120 days of paid parental leave" in prompt
    assert hit.chunk_id not in prompt
