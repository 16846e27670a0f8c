"""The document embedding worker: the same vectors, a lower CPU priority, and recovery when it dies."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest

from cairn import Cairn
from cairn.embed.local import WORKER_NICENESS, WORKER_START_AFTER, SentenceTransformerEmbedder

TEXTS = [
    "Swollen lithium batteries must be isolated in a fireproof container.",
    "The travel policy reimburses economy fares for flights under six hours.",
    "def parse(path): return open(path).read()",
]


@pytest.fixture(scope="module")
def worker_embedder() -> Iterator[SentenceTransformerEmbedder]:
    embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2", worker=True)
    embedder.start_worker(wait=True)
    yield embedder
    embedder.close()


def test_documents_embedded_by_the_worker_equal_those_embedded_in_process(
    worker_embedder: SentenceTransformerEmbedder, embedder: SentenceTransformerEmbedder
) -> None:
    by_worker = worker_embedder.embed_documents(TEXTS)
    assert worker_embedder.worker_pid not in (None, os.getpid())
    np.testing.assert_allclose(by_worker, embedder.embed_documents(TEXTS), atol=1e-5)
    # Queries stay in this process: no round trip to the worker on the search path.
    np.testing.assert_allclose(worker_embedder.embed_query(TEXTS[0]), by_worker[0], atol=1e-5)


def test_the_worker_runs_at_a_lower_cpu_priority_than_the_process_serving_queries(
    worker_embedder: SentenceTransformerEmbedder,
) -> None:
    worker_embedder.embed_documents(TEXTS[:1])
    assert worker_embedder.worker_pid is not None
    assert psutil.Process(worker_embedder.worker_pid).nice() == psutil.Process().nice() + WORKER_NICENESS


def test_a_killed_worker_is_replaced_and_the_batch_still_embedded(worker_embedder: SentenceTransformerEmbedder) -> None:
    expected = worker_embedder.embed_documents(TEXTS)
    first = worker_embedder.worker_pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    np.testing.assert_allclose(worker_embedder.embed_documents(TEXTS), expected, atol=1e-5)
    assert worker_embedder.worker_pid not in (None, first)


def test_a_few_texts_never_start_the_worker_and_a_real_ingest_starts_it_without_waiting_for_it() -> None:
    embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2", worker=True)
    try:
        embedder.embed_documents(TEXTS)  # a few files: the seconds a worker takes to start are not worth it
        assert embedder.worker_pid is None
        more = [f"note {i}: {TEXTS[i % 3]}" for i in range(WORKER_START_AFTER - len(TEXTS))]
        vectors = embedder.embed_documents(more)  # the total reaches the threshold: the worker starts ...
        assert embedder.worker_pid is not None
        assert vectors.shape == (len(more), embedder.dim)  # ... and this batch was embedded here meanwhile
    finally:
        embedder.close()


def test_a_large_ingest_starts_the_worker_and_finds_what_it_stored(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(WORKER_START_AFTER + 6):
        (folder / f"note-{i:03d}.md").write_text(f"Pump {i} is serviced every {i + 2} weeks by crew {i % 5}.\n")
    (folder / "battery.md").write_text("If a lithium battery swells, move it to the fireproof bin outside.\n")
    with Cairn(home=tmp_path / "home", embed_worker=True) as cairn:
        report = cairn.ingest(folder, collection="worker")
        assert report.failed == []
        assert report.ingested == WORKER_START_AFTER + 7
        hit = cairn.search("swollen battery", collection="worker", mode="dense").hits[0]
        assert hit.source.endswith("battery.md")
        assert cairn.embedder.worker_pid is not None  # type: ignore[attr-defined]
