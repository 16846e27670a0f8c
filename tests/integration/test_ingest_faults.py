"""A batch that fails after its versions were reserved gives them up: no pending version of a live writer is left
to hide rows and block maintenance (verify, reindex) until the writer's process ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cairn import Cairn, Settings
from cairn.errors import IndexUnavailable

pytestmark = pytest.mark.integration


def test_a_batch_whose_index_write_fails_leaves_no_pending_version(
    tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The index going away mid-batch fails the ingest with IndexUnavailable and leaves no pending version; the
    next run publishes the document once (one version), and verify is clean without waiting on a writer."""
    cairn = Cairn(Settings(home=tmp_path / "home"))
    cairn._embedder = embedder
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Leave\n\nEmployees get 25 days of annual leave.\n")
    insert = cairn.index.insert

    def down(*args: Any, **kwargs: Any) -> None:
        raise IndexUnavailable("the Milvus server at http://127.0.0.1:9 is unavailable")

    try:
        monkeypatch.setattr(cairn.index, "insert", down)
        with pytest.raises(IndexUnavailable):
            cairn.ingest([docs])
        assert cairn.catalog.pending_versions("default") == []
        monkeypatch.setattr(cairn.index, "insert", insert)
        assert cairn.ingest([docs]).ingested == 1
        [document] = cairn.documents()
        assert len(document.versions) == 1
        assert cairn.verify().clean
        assert "leave.md" in cairn.search("annual leave", mode="dense").hits[0].source
    finally:
        cairn.close()
