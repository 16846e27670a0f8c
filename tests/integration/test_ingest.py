"""Ingest semantics on real Milvus Lite: idempotence, replacement, sync, bad files."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from cairn import Cairn
from cairn.vault import RowSet

pytestmark = pytest.mark.integration


def test_reingesting_unchanged_files_changes_nothing(cairn: Cairn, docs: Path) -> None:
    """The second ingest of the same folder reports every file unchanged, embeds nothing, adds no rows."""
    first = cairn.ingest([docs])
    assert (first.files, first.ingested, first.unchanged, first.failed) == (3, 3, 0, [])
    rows, embedded = cairn.index.count("default"), cairn.embedder.embedded  # type: ignore[attr-defined]
    assert rows == first.chunks > 0
    second = cairn.ingest([docs])
    assert (second.files, second.ingested, second.unchanged, second.chunks) == (3, 0, 3, 0)
    assert cairn.index.count("default") == rows
    assert cairn.embedder.embedded == embedded  # type: ignore[attr-defined]


def test_unchanged_text_is_not_reembedded_after_a_restart(tmp_path: Path, docs: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """Re-ingesting into a new collection reuses the vault's embedding cache: zero texts embedded."""
    from tests.integration.conftest import CountingEmbedder

    from cairn import Settings

    home = tmp_path / "home"
    with Cairn(Settings(home=home)) as first:
        first._embedder = CountingEmbedder(embedder)
        first.ingest([docs], collection="one")
        assert first.embedder.embedded > 0  # type: ignore[attr-defined]
    with Cairn(Settings(home=home)) as second:
        second._embedder = spy = CountingEmbedder(embedder)
        report = second.ingest([docs], collection="two")
        assert report.chunks > 0
        assert spy.embedded == 0


def test_changed_file_replaces_its_chunks(cairn: Cairn, docs: Path) -> None:
    """After an edit, search finds the new text, never the old, and the old version's rows are gone."""
    cairn.ingest([docs])
    path = docs / "batteries.txt"
    path.write_text("Battery handling\n\nSwollen batteries go into the sand bucket by the loading dock.\n")
    report = cairn.ingest([docs])
    assert (report.ingested, report.unchanged) == (1, 2)
    hits = cairn.search("what to do with a swollen battery", k=5).hits
    texts = " ".join(h.text for h in hits if h.source == "docs/batteries.txt")
    assert "sand bucket" in texts
    assert "fireproof bin" not in texts
    doc_id = next(d.doc_id for d in cairn.documents() if d.source == "docs/batteries.txt")
    assert RowSet(doc_id=doc_id, version=1) not in cairn.index.live_rowsets("default")
    assert RowSet(doc_id=doc_id, version=2) in cairn.index.live_rowsets("default")
    versions = next(d for d in cairn.documents() if d.doc_id == doc_id).versions
    assert [v.version for v in versions] == [1, 2]


def test_concurrent_reader_sees_exactly_one_version(cairn: Cairn, tmp_path: Path) -> None:
    """While a document is replaced again and again, every search sees one version of it: never both, never neither."""
    folder = tmp_path / "live"
    folder.mkdir()
    path = folder / "codes.txt"

    def write(version: int) -> None:
        path.write_text("\n\n".join(f"Gate {g} opens with launch code {version}-{g}." for g in range(12)))

    write(0)
    cairn.ingest([folder])
    stop = threading.Event()
    observed: list[set[int]] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                hits = cairn.search("gate launch code", k=50, mode="keyword").hits
                observed.append({h.version for h in hits})
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for version in range(1, 6):
            write(version)
            assert cairn.ingest([folder]).ingested == 1
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert len(observed) > 5
    assert all(len(versions) == 1 for versions in observed), [v for v in observed if len(v) != 1][:5]


def test_sync_removes_documents_whose_files_are_gone(cairn: Cairn, docs: Path) -> None:
    """--sync takes out documents under the given folder whose files were deleted; others stay."""
    cairn.ingest([docs])
    (docs / "api.html").unlink()
    plain = cairn.ingest([docs])
    assert plain.removed == 0
    assert len(cairn.documents()) == 3
    synced = cairn.ingest([docs], sync=True)
    assert synced.removed == 1
    assert sorted(Path(d.source).name for d in cairn.documents()) == ["batteries.txt", "leave.md"]
    assert all("Frankfurt" not in h.text for h in cairn.search("Atlas regions Frankfurt", k=10).hits)


def test_bad_files_are_reported_and_do_not_stop_the_others(cairn: Cairn, docs: Path) -> None:
    """A corrupt PDF and an empty file fail, a binary file is skipped, each with a reason; the good files ingest."""
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage without xref")
    (docs / "empty.txt").write_bytes(b"")
    (docs / "blob.bin").write_bytes(bytes(range(256)) * 10)
    report = cairn.ingest([docs, docs / "missing.md"])
    failed = {Path(f.path).name: f.error for f in report.failed}
    assert set(failed) == {"broken.pdf", "empty.txt", "missing.md"}
    assert [(Path(s.path).name, "binary" in s.error) for s in report.skipped] == [("blob.bin", True)]
    assert "empty" in failed["empty.txt"]
    assert "PDF" in failed["broken.pdf"]
    assert "no such file" in failed["missing.md"]
    assert report.ingested == 3
    assert {Path(d.source).name for d in cairn.documents()} == {"leave.md", "batteries.txt", "api.html"}


def test_remove_document_by_path(cairn: Cairn, docs: Path) -> None:
    """docs rm takes a document out of search results at once; its versions remain in the vault."""
    cairn.ingest([docs])
    (removed,) = cairn.remove_documents([str(docs / "leave.md")])
    assert removed.source == "docs/leave.md"
    assert all(h.doc_id != removed.doc_id for h in cairn.search("parental leave days", k=10).hits)
    assert cairn.vault.get_blob(removed.versions[0].sha256).startswith(b"# Leave policy")


def test_a_batch_the_engine_refuses_gives_up_its_reserved_versions(cairn: Cairn, tmp_path: Path) -> None:
    """Milvus refusing a batch's rows fails the ingest with the engine's reason, and leaves no version pending
    (a pending version would hold every verify and rebuild of the collection until the writer exits)."""
    from cairn.errors import EngineError
    from cairn.settings import Settings

    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(6):
        (folder / f"note-{n}.md").write_text(f"# Note {n}\n\nValve {n} was replaced on shift {n * 2}.\n")
    small = Cairn(Settings(home=tmp_path / "home", ingest_batch_chunks=1))
    small._embedder = cairn._embedder
    dropped: list[str] = []

    def drop_the_engine_collection(step: object) -> None:
        if not dropped:  # the first batch is live: take the engine collection away under the next one
            state = small.catalog.collection("default")
            assert state is not None
            small.index.client.drop_collection(small.index.engine_name(state.index_name))
            dropped.append(state.name)

    try:
        with pytest.raises(EngineError, match="Milvus refused rows"):
            small.ingest([folder], progress=drop_the_engine_collection)

        assert dropped == ["default"]
        assert small.catalog.pending_versions("default") == []
        assert len(small.documents()) == 1  # the first batch, published before the engine lost its collection
    finally:
        small.close()
