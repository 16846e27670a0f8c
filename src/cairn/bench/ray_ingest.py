"""The same corpus through the single-process path and through Ray with N embedding actors, in one run.

Each run ingests into a fresh collection of one scratch home, with its engine started and its
model loaded before the clock (as `bench_ingest` warms the local path). Reported per run: wall
seconds, chunks and tokens per second; for Ray, the overhead against the local path
(``local_s / ray_s`` at one actor) and the scaling efficiency of N actors over one
(``speed(N) / (N × speed(1))``). Coverage must match: the same chunks (text and order) in every
run, each embedded whole (``lost_coverage`` from the model's input limit).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cairn.bench.ingest import machine
from cairn.bench.peers import coverage
from cairn.core import Cairn
from cairn.ingest import discover
from cairn.settings import Settings

__all__ = ["bench_ray_ingest"]


def _chunk_texts(cairn: Cairn, collection: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for doc in cairn.catalog.iter_live_documents(collection):
        version = doc.live_version()
        assert version is not None
        chunks, _ = cairn.vault.read_chunks(version.chunks_key, doc_id=doc.doc_id, version=version.version)
        found[doc.source] = [chunk.text for chunk in sorted(chunks, key=lambda chunk: chunk.ordinal)]
    return found


def _run(cairn: Cairn, corpus: list[Path], collection: str, engine: Any) -> dict[str, Any]:
    started = time.perf_counter()
    report = cairn.ingest(corpus, collection=collection, engine=engine)
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "files": report.files,
        "failed": len(report.failed),
        "chunks": report.chunks,
        "tokens": report.tokens,
        "chunks_per_s": round(report.chunks / seconds, 1),
        "tokens_per_s": round(report.tokens / seconds, 1),
        "stage_seconds": report.seconds,
    }


def bench_ray_ingest(
    corpus: list[Path], *, workers: Sequence[int] = (1, 2), address: str | None = None
) -> dict[str, Any]:
    """Ingest *corpus* locally and on Ray with each count of embedding actors in *workers*."""
    from cairn.ray_engine import RayEngine

    files, _ = discover(corpus)
    runs: dict[str, dict[str, Any]] = {}
    # Each run in a home of its own: the embedding cache is per home, and a warm one would embed nothing.
    with tempfile.TemporaryDirectory(prefix="cairn-bench-ray-") as scratch:
        cairn = Cairn(Settings(home=Path(scratch) / "local"))
        try:
            embedder = cairn.embedder
            embedder.embed_documents(["warm up the model"] * 4)
            list(cairn.parsers.parse([str(f) for f in files[:2]]))
            runs["local"] = _run(cairn, corpus, "bench", None)
            expected = _chunk_texts(cairn, "bench")
            limit = embedder.max_tokens - embedder.special_tokens
            lost = coverage(embedder.count_tokens([t for texts in expected.values() for t in texts]), limit)
        finally:
            cairn.close()  # its parser and embedding processes would share the CPUs with the actors
        for count in workers:
            name = f"ray_{count}"
            cairn = Cairn(Settings(home=Path(scratch) / name))
            engine = RayEngine(address=address, embedders=count)
            try:
                # Start the actors and load their models before the clock, as the local model was.
                model = cairn.settings.embed_model
                engine.embedder_for(cairn.settings, cairn.embedder_for)(model).embed_documents(["warm up"] * 8)
                list(engine.parsers(cairn.settings).parse([str(f) for f in files[:2]]))
                runs[name] = _run(cairn, corpus, "bench", engine)
                runs[name]["layout"] = vars(engine.layout) if engine.layout else None
                runs[name]["same_chunks_as_local"] = _chunk_texts(cairn, "bench") == expected
            finally:
                engine.close()
                cairn.close()
    local_s = runs["local"]["seconds"]
    one = runs.get("ray_1")
    for count in workers:
        run = runs[f"ray_{count}"]
        run["speedup_over_local"] = round(local_s / run["seconds"], 3)
        if one is not None:
            run["scaling_efficiency"] = round(one["seconds"] / (count * run["seconds"]), 3)
    return {
        "machine": machine(),
        "corpus": [str(p) for p in corpus],
        "files": len(files),
        "model_input_limit_tokens": limit,
        "lost_coverage": lost["lost_coverage"],
        "runs": runs,
        "ray_overhead_at_1": round(one["seconds"] / local_s, 3) if one else None,
    }
