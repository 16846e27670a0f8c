"""A worker's background upkeep: replaced index rows past their grace are deleted even when no writer comes back."""

from __future__ import annotations

import time
from pathlib import Path

from cairn import Cairn, Settings
from cairn.jobs import Worker


def test_a_worker_deletes_retired_rows_after_the_grace(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """An ingest that replaces a document and exits leaves the old rows hidden for the grace; the next worker
    housekeeping round deletes them and stops hiding them."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Leave\n\nEmployees get 25 days of annual leave.\n")
    cairn = Cairn(Settings(home=tmp_path / "home", retire_grace_s=1.0))
    cairn._embedder = embedder
    try:
        cairn.ingest([docs])
        (docs / "leave.md").write_text("# Leave\n\nEmployees get 30 days of annual leave.\n")
        cairn.ingest([docs])
        assert len(cairn.catalog.hidden_rows("default")) == 1
        rows_before = cairn.index.count("default")
        time.sleep(1.2)
        Worker(cairn)._housekeeping()
        assert cairn.catalog.hidden_rows("default") == []
        assert cairn.index.count("default") < rows_before
        assert cairn.verify().clean
    finally:
        cairn.close()
