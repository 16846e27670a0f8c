"""Ingest throughput against the raw embedder on the same chunks, and against LangChain and LlamaIndex.

The pipeline is measured end to end on a cold vault (nothing cached), then the very chunks it
produced are embedded again by the bare model with the same batch size. Their ratio says how
much of the embedder's speed the pipeline keeps: parsing, chunking, vault writes and Milvus
inserts are the overhead. With ``peers``, the same files go through each peer framework
(`cairn.bench.peers`) in a process of its own, on the same model and engine.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cairn.bench.peers import bench_peer, coverage
from cairn.chunking import embedding_input
from cairn.core import Cairn
from cairn.embed.local import SentenceTransformerEmbedder, load_embedder
from cairn.ingest import discover
from cairn.settings import Settings

__all__ = ["bench_ingest", "machine"]


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gib = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "python": platform.python_version(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),  # the machine may be shared: say how busy it was
    }


def bench_ingest(corpus: list[Path], *, batch_size: int = 32, peers: Sequence[str] = ()) -> dict[str, Any]:
    """Ingest *corpus* into a scratch home; the raw embedder and each of *peers* on the same input."""
    files, _ = discover(corpus)
    with tempfile.TemporaryDirectory(prefix="cairn-bench-") as home:
        settings = Settings(home=Path(home), embed_batch_size=batch_size)
        cairn = Cairn(settings)
        embedder = cairn.embedder
        embedder.embed_documents(["warm up the model"] * 4)
        if isinstance(embedder, SentenceTransformerEmbedder) and settings.embed_worker:
            embedder.start_worker(wait=True)  # started and loaded before the clock, as the peers' models are
        cairn.index  # noqa: B018 - open the engine before the clock starts
        list(cairn.parsers.parse([str(f) for f in files[:2]]))  # start the parser processes, as peers import first
        started = time.perf_counter()
        report = cairn.ingest(corpus, collection="bench")
        ingest_s = time.perf_counter() - started

        texts: list[str] = []
        for doc in cairn.catalog.iter_live_documents("bench"):
            version = doc.live_version()
            assert version is not None
            chunks, _ = cairn.vault.read_chunks(version.chunks_key, doc_id=doc.doc_id, version=version.version)
            # What the model read for each chunk (with its heading path when embed_heading_context is on).
            texts.extend(embedding_input(c, heading_context=settings.embed_heading_context) for c in chunks)
        tokens = sum(embedder.count_tokens(texts))
        # The limit: the model called directly in this process, with no pipeline and no worker around it.
        raw = load_embedder(settings.embed_model, settings.embed_device, batch_size, False)
        raw.embed_documents(["warm up the model"] * 4)
        started = time.perf_counter()
        raw.embed_documents(texts)
        raw_s = time.perf_counter() - started

        started = time.perf_counter()
        again = cairn.ingest(corpus, collection="bench")
        reingest_s = time.perf_counter() - started
        limit = embedder.max_tokens - embedder.special_tokens
        cairn.close()
        peer_results = [bench_peer(name, files, Path(home)) for name in peers]
    for peer in peer_results:
        if "seconds" in peer:
            peer["cairn_speedup"] = round(peer["seconds"] / ingest_s, 2)
    return {
        "machine": machine(),
        "embed_worker": settings.embed_worker,
        "corpus": [str(p) for p in corpus],
        "files": report.files,
        "failed": len(report.failed),
        "skipped": len(report.skipped),
        "formats": report.formats,
        "chunks": report.chunks,
        "tokens": tokens,
        "ingest_s": round(ingest_s, 2),
        "ingest_chunks_per_s": round(report.chunks / ingest_s, 1),
        "ingest_pages_per_s": round(report.files / ingest_s, 2),
        "ingest_tokens_per_s": round(tokens / ingest_s, 1),
        "raw_embed_s": round(raw_s, 2),
        "raw_embed_chunks_per_s": round(len(texts) / raw_s, 1),
        "raw_embed_tokens_per_s": round(tokens / raw_s, 1),
        "ratio_ingest_to_raw": round(raw_s / ingest_s, 3),
        "model_input_limit_tokens": limit,
        "lost_coverage": coverage(embedder.count_tokens(texts), limit)["lost_coverage"],
        "stage_seconds": report.seconds,
        "reingest_unchanged_s": round(reingest_s, 2),
        "reingest_unchanged_files": again.unchanged,
        "peers": peer_results,
    }
