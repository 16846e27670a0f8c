"""The same corpus through LangChain and LlamaIndex, each the way its documentation shows, on the same model and engine.

Each peer runs in a process of its own (``python -m cairn.bench.peers NAME DB FILE...``) so that its
threads, caches and memory never touch cairn's run; the process imports the framework, loads the model
and warms it before its clock starts, exactly as cairn's run does. What is timed is reading, splitting,
embedding and inserting into a Milvus Lite file of its own (the engine cairn uses).

- **LangChain** (``langchain-milvus``): ``RecursiveCharacterTextSplitter(chunk_size=1000,
  chunk_overlap=200)``, ``HuggingFaceEmbeddings`` and ``Milvus.add_documents``.
- **LlamaIndex** (``llama-index-vector-stores-milvus``): ``SimpleDirectoryReader``, the default
  ``SentenceSplitter`` (1024 tiktoken tokens, 200 overlap), ``HuggingFaceEmbedding`` and
  ``VectorStoreIndex.from_documents``.

A chunk longer than the model's input limit is truncated by the model: the tokens past the limit are
never embedded. That is reported as lost coverage (the fraction of the peer's chunk tokens beyond the
limit), not as speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["PEERS", "bench_peer", "coverage"]

PEERS = ("langchain", "llamaindex")


def coverage(token_counts: Sequence[int], limit: int) -> dict[str, Any]:
    """Tokens of the chunks, how many the model reads (at most *limit* per chunk) and the fraction lost."""
    total = sum(token_counts)
    embedded = sum(min(n, limit) for n in token_counts)
    return {
        "chunk_tokens": total,
        "embedded_tokens": embedded,
        "lost_coverage": round((total - embedded) / total, 4) if total else 0.0,
        "chunks_over_limit": sum(1 for n in token_counts if n > limit),
        "max_chunk_tokens": max(token_counts, default=0),
    }


def bench_peer(name: str, files: Sequence[Path], workdir: Path, *, timeout_s: float = 3600) -> dict[str, Any]:
    """Run peer *name* over *files* in a child process; its JSON result, or ``{"error": ...}``."""
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; choose one of {', '.join(PEERS)}")
    db = workdir / f"{name}.db"
    command = [sys.executable, "-m", "cairn.bench.peers", name, str(db), *map(str, files)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return {"peer": name, "error": f"exit {done.returncode}: " + " | ".join(tail)}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _model_path() -> str:
    from cairn.embed.local import _resolve_model

    return _resolve_model("all-MiniLM-L6-v2")


def _langchain(db: str, files: list[str]) -> tuple[dict[str, Any], list[str]]:
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_milvus import Milvus
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    embeddings = HuggingFaceEmbeddings(model_name=_model_path())
    embeddings.embed_documents(["warm up the model"] * 4)
    started = time.perf_counter()
    documents = [
        Document(page_content=Path(f).read_text(encoding="utf-8", errors="replace"), metadata={"source": f})
        for f in files
    ]
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(documents)
    store = Milvus(embeddings, connection_args={"uri": db}, collection_name="bench", auto_id=True, drop_old=True)
    store.add_documents(chunks)
    seconds = time.perf_counter() - started
    rows = store.client.get_collection_stats("bench")["row_count"]
    settings = {"splitter": "RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)"}
    return {"seconds": seconds, "pages": len(documents), "chunks": len(chunks), "rows": rows, **settings}, [
        c.page_content for c in chunks
    ]


def _llamaindex(db: str, files: list[str]) -> tuple[dict[str, Any], list[str]]:
    from llama_index.core import Settings, SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.schema import MetadataMode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.milvus import MilvusVectorStore

    Settings.embed_model = HuggingFaceEmbedding(model_name=_model_path())
    Settings.embed_model.get_text_embedding_batch(["warm up the model"] * 4)
    started = time.perf_counter()
    documents = SimpleDirectoryReader(input_files=files).load_data()
    store = MilvusVectorStore(uri=db, collection_name="bench", dim=384, overwrite=True)
    VectorStoreIndex.from_documents(documents, storage_context=StorageContext.from_defaults(vector_store=store))
    seconds = time.perf_counter() - started
    rows = store.client.get_collection_stats("bench")["row_count"]
    # The default splitter is deterministic: splitting again (off the clock) gives the texts it embedded.
    nodes = Settings.node_parser.get_nodes_from_documents(documents)
    texts = [node.get_content(metadata_mode=MetadataMode.EMBED) for node in nodes]
    settings = {"splitter": "SentenceSplitter() default: chunk_size=1024 tiktoken tokens, chunk_overlap=200"}
    return {"seconds": seconds, "pages": len(files), "chunks": len(nodes), "rows": rows, **settings}, texts


def _main(argv: list[str]) -> None:
    name, db, files = argv[0], argv[1], argv[2:]
    import warnings

    warnings.filterwarnings("ignore")
    run = {"langchain": _langchain, "llamaindex": _llamaindex}[name]
    result, texts = run(db, files)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(_model_path())
    counts = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    limit = 256 - len(tokenizer("")["input_ids"])  # all-MiniLM-L6-v2 reads 256 tokens, specials included
    versions = {
        "langchain": ["langchain-core", "langchain-milvus", "langchain-huggingface", "langchain-text-splitters"],
        "llamaindex": ["llama-index-core", "llama-index-vector-stores-milvus", "llama-index-embeddings-huggingface"],
    }[name]
    from importlib.metadata import version

    seconds = result["seconds"]
    cover = coverage(counts, limit)
    print(
        json.dumps(
            {
                "peer": name,
                "packages": {p: version(p) for p in versions},
                **result,
                "seconds": round(seconds, 2),
                "chunks_per_s": round(result["chunks"] / seconds, 1),
                "pages_per_s": round(result["pages"] / seconds, 2),
                "embedded_tokens_per_s": round(cover["embedded_tokens"] / seconds, 1),
                "model_input_limit_tokens": limit,
                **cover,
            }
        )
    )


if __name__ == "__main__":
    _main(sys.argv[1:])
