"""Ingest throughput against the raw embedder on the same chunks.

The pipeline is measured end to end on a cold vault (nothing cached), then the very chunks it
produced are embedded again by the bare model with the same batch size. Their ratio says how
much of the embedder's speed the pipeline keeps: parsing, chunking, vault writes and Milvus
inserts are the overhead.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from cairn.core import Cairn
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
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory_gib, "python": platform.python_version()}


def bench_ingest(corpus: list[Path], *, batch_size: int = 32) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cairn-bench-") as home:
        cairn = Cairn(Settings(home=Path(home), embed_batch_size=batch_size))
        embedder = cairn.embedder
        embedder.embed_documents(["warm up the model"] * 4)
        cairn.index  # noqa: B018 - open the engine before the clock starts
        started = time.perf_counter()
        report = cairn.ingest(corpus, collection="bench")
        ingest_s = time.perf_counter() - started

        texts: list[str] = []
        with cairn._live_manifest("bench").snapshot() as manifest:
            for doc in manifest.live_documents():
                version = doc.live_version()
                assert version is not None
                chunks, _ = cairn.vault.read_chunks(version.chunks_key, doc_id=doc.doc_id, version=version.version)
                texts.extend(chunk.text for chunk in chunks)
        tokens = sum(embedder.count_tokens(texts))
        started = time.perf_counter()
        embedder.embed_documents(texts)
        raw_s = time.perf_counter() - started

        started = time.perf_counter()
        again = cairn.ingest(corpus, collection="bench")
        reingest_s = time.perf_counter() - started
        cairn.close()
    return {
        "machine": machine(),
        "corpus": [str(p) for p in corpus],
        "files": report.files,
        "failed": len(report.failed),
        "skipped": len(report.skipped),
        "formats": report.formats,
        "chunks": report.chunks,
        "tokens": tokens,
        "ingest_s": round(ingest_s, 2),
        "ingest_chunks_per_s": round(report.chunks / ingest_s, 1),
        "raw_embed_s": round(raw_s, 2),
        "raw_embed_chunks_per_s": round(len(texts) / raw_s, 1),
        "ratio_ingest_to_raw": round(raw_s / ingest_s, 3),
        "stage_seconds": report.seconds,
        "reingest_unchanged_s": round(reingest_s, 2),
        "reingest_unchanged_files": again.unchanged,
    }
