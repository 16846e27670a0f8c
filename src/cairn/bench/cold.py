"""A cold `cairn ingest` process against the bare embedder on the same text.

The bare embedder is the model loaded and warmed up in this process, given the corpus's text cut into full
windows of its input limit: no overlap, no chunk boundaries, the fewest tokens and almost no padding, one
call. That is the most an ingest could get out of the model. A cold ingest is a new `cairn ingest CORPUS`
process with an empty home, timed from its start to its exit: imports, the model's load, parsing, chunking,
embedding, vault writes and index inserts all count. Both cover the same text, so their tokens per second
compare as the inverse of their times: ``ratio = bare / cold``.

Each cold run is made with the embedding worker (the default) and without it (``CAIRN_EMBED_WORKER=false``);
the chunks of the last run are also embedded by the bare model, which separates what chunking costs (more
inputs, overlap, padding) from what the pipeline around the model costs. The corpus must be plain-text
files (``scripts/bench/build_manpages.py`` writes one), so that the bare embedder reads exactly the text the
ingest does.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.bench.ingest import machine
from cairn.core import Cairn
from cairn.embed.local import SentenceTransformerEmbedder
from cairn.errors import InvalidRequest
from cairn.settings import Settings

__all__ = ["bench_cold", "cold_ingest"]


def _texts(corpus: Path) -> list[str]:
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    if not files or any(p.suffix != ".txt" for p in files):
        raise InvalidRequest(
            f"{corpus} must hold plain-text .txt files only (the bare embedder reads them as the ingest does); "
            "build one with python scripts/bench/build_manpages.py"
        )
    return [p.read_text(encoding="utf-8") for p in files]


def cold_ingest(corpus: Path, home: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """One `cairn ingest` in a process of its own, with *env* over this one's; its wall time and stage seconds."""
    command = [sys.executable, "-c", "from cairn.cli import main; main()", "ingest", str(corpus), "--json"]
    started = time.perf_counter()
    done = subprocess.run(
        command,
        env={**os.environ, **env, "CAIRN_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"cairn ingest failed ({done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    pipeline = float(report["seconds"]["total"])
    return {
        "wall_s": round(wall, 2),
        "startup_s": round(wall - pipeline, 2),  # process start to the ingest's first step, and exit
        "pipeline_s": round(pipeline, 2),
        "embed_s": report["seconds"].get("embed"),
        "chunks": report["chunks"],
        "tokens": report["tokens"],
    }


def _chunk_texts(home: Path) -> list[str]:
    with Cairn(Settings(home=home)) as cairn:
        texts: list[str] = []
        for doc in cairn.catalog.iter_live_documents(cairn.settings.default_collection):
            version = doc.live_version()
            assert version is not None
            chunks, _ = cairn.vault.read_chunks(version.chunks_key, doc_id=doc.doc_id, version=version.version)
            texts.extend(chunk.text for chunk in chunks)
    return texts


def _bare(model: Any, texts: list[str], batch_size: int) -> float:
    """Seconds for the bare model (sentence-transformers' own encode) on *texts*."""
    started = time.perf_counter()
    model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    return time.perf_counter() - started


def bench_cold(corpus: Path, *, runs: int = 2, batch_size: int | None = None) -> dict[str, Any]:
    """Cold ingests of *corpus* (with and without the worker, *runs* each) against the bare embedder.

    Both use *batch_size* (default: cairn's); the bare model is also timed once at sentence-transformers'
    own default batch size (32), the model as most people run it.
    """
    texts = _texts(corpus)
    settings = Settings()
    batch_size = batch_size or settings.embed_batch_size
    embedder = SentenceTransformerEmbedder(settings.embed_model, device=settings.embed_device, batch_size=batch_size)
    limit = embedder.max_tokens - embedder.special_tokens
    text_tokens = sum(embedder.count_tokens(texts))
    windows = [piece for text in texts for piece in embedder.split_by_tokens(text, limit)]
    cold: dict[str, list[dict[str, Any]]] = {"worker": [], "in_process": []}
    bare: list[float] = []
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(embedder.model_path, device=settings.embed_device)
    model.encode(["warm up the model"] * 4)
    with tempfile.TemporaryDirectory(prefix="cairn-cold-") as scratch:
        for run in range(runs):  # interleaved, so a slower stretch of a shared machine touches all three
            for mode, worker in (("worker", True), ("in_process", False)):
                home = Path(scratch) / f"{mode}-{run}"
                env = {"CAIRN_EMBED_WORKER": str(worker).lower(), "CAIRN_EMBED_BATCH_SIZE": str(batch_size)}
                cold[mode].append(cold_ingest(corpus, home, env))
            bare.append(_bare(model, windows, batch_size))
        chunk_texts = _chunk_texts(Path(scratch) / f"in_process-{runs - 1}")
        bare_chunks = _bare(model, chunk_texts, batch_size)
        bare_default = _bare(model, windows, 32)
    bare_s = statistics.median(bare)
    result: dict[str, Any] = {
        "machine": machine(),
        "corpus": str(corpus),
        "files": len(texts),
        "characters": sum(len(t) for t in texts),
        "text_tokens": text_tokens,
        "bare_windows": len(windows),
        "bare_s": [round(s, 2) for s in bare],
        "batch_size": batch_size,
        "bare_tokens_per_s": round(text_tokens / bare_s, 1),
        "bare_batch_32_s": round(bare_default, 2),
        "bare_on_cairn_chunks_s": round(bare_chunks, 2),
        "cairn_chunks": len(chunk_texts),
        "cairn_chunk_tokens": sum(embedder.count_tokens(chunk_texts)),
    }
    for mode, measured in cold.items():
        wall = statistics.median(r["wall_s"] for r in measured)
        result[f"cold_{mode}"] = {
            "runs": measured,
            "median_wall_s": round(wall, 2),
            "tokens_per_s": round(text_tokens / wall, 1),
            "ratio_to_bare": round(bare_s / wall, 3),
            "ratio_to_bare_batch_32": round(bare_default / wall, 3),
        }
    return result
