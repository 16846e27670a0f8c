"""The janitor: retired rows are deleted only after the grace and after older searches of this process end;
pending versions of a dead writer are abandoned (on a real SQLite catalog)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from cairn.catalog import RowSet, SqlCatalog, VersionDraft
from cairn.catalog.janitor import LocalReaders, sweep
from cairn.catalog.writers import this_process, writer_is_gone


def _catalog(tmp_path: Path) -> SqlCatalog:
    catalog = SqlCatalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.ensure_collection("kb", embed_model="m", dim=3)
    return catalog


def _draft(sha: str) -> VersionDraft:
    return VersionDraft(doc_id="a" * 32, source="/a", sha256=sha * 64, size=1, mime="text/plain", chunks=1)


def _replace_once(catalog: SqlCatalog) -> None:
    for sha in ("1", "2"):
        [(_, version)] = catalog.reserve("kb", [_draft(sha)], writer=this_process(), chunks_key=lambda d, v: f"{v}")
        catalog.publish("kb", [(_draft(sha), version.version)], generation=0)


class Deleted:
    def __init__(self) -> None:
        self.rows: list[tuple[str, list[RowSet]]] = []

    def __call__(self, index: str, rowsets: Sequence[RowSet]) -> None:
        self.rows.append((index, list(rowsets)))


def test_retired_rows_wait_for_the_grace(tmp_path: Path) -> None:
    """Within the grace nothing is deleted and the rows stay hidden; after it they are deleted and forgotten."""
    catalog = _catalog(tmp_path)
    _replace_once(catalog)
    state = catalog.collection("kb")
    assert state is not None
    deleted = Deleted()
    assert sweep(catalog, state, delete_rows=deleted, readers=LocalReaders(), grace_s=60, stale_after_s=3600) == 0
    assert deleted.rows == []
    assert catalog.hidden_rows("kb") == [RowSet(doc_id="a" * 32, version=1)]
    assert sweep(catalog, state, delete_rows=deleted, readers=LocalReaders(), grace_s=0, stale_after_s=3600) == 1
    assert deleted.rows == [("kb", [RowSet(doc_id="a" * 32, version=1)])]
    assert catalog.hidden_rows("kb") == []


def test_deletion_waits_for_searches_that_started_before(tmp_path: Path) -> None:
    """A search of this process that began before the rows were retired holds their deletion until it ends."""
    catalog = _catalog(tmp_path)
    readers = LocalReaders()
    deleted = Deleted()
    release = threading.Event()

    def search() -> None:
        with readers.reading():
            release.wait(5)

    searching = threading.Thread(target=search)
    searching.start()
    time.sleep(0.05)
    _replace_once(catalog)
    state = catalog.collection("kb")
    assert state is not None
    sweeper = threading.Thread(
        target=sweep,
        args=(catalog, state),
        kwargs={"delete_rows": deleted, "readers": readers, "grace_s": 0, "stale_after_s": 3600},
    )
    sweeper.start()
    time.sleep(0.3)
    assert deleted.rows == []  # still waiting for the older search
    release.set()
    sweeper.join(5)
    searching.join(5)
    assert [rows for _, rows in deleted.rows] == [[RowSet(doc_id="a" * 32, version=1)]]


def test_a_dead_writers_pending_version_is_abandoned(tmp_path: Path) -> None:
    """A version reserved by a process that has exited is abandoned, its rows deleted and its files forgotten."""
    catalog = _catalog(tmp_path)
    dead = subprocess.run(
        [sys.executable, "-c", "from cairn.catalog.writers import this_process; print(this_process())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert writer_is_gone(dead, age_s=0, stale_after_s=3600)
    assert not writer_is_gone(this_process(), age_s=10**6, stale_after_s=3600)
    catalog.reserve("kb", [_draft("1")], writer=dead, chunks_key=lambda d, v: f"{v}")
    catalog.reserve("kb", [_draft("2")], writer=this_process(), chunks_key=lambda d, v: f"{v}")
    state = catalog.collection("kb")
    assert state is not None
    deleted, forgotten = Deleted(), []
    sweep(
        catalog,
        state,
        delete_rows=deleted,
        readers=LocalReaders(),
        grace_s=0,
        stale_after_s=3600,
        forget_files=lambda rowset, generation: forgotten.append(rowset),
    )
    assert forgotten == [RowSet(doc_id="a" * 32, version=1)]
    assert deleted.rows == [("kb", [RowSet(doc_id="a" * 32, version=1)])]
    assert [p.rowset.version for p in catalog.pending_versions("kb")] == [2]  # the live writer's is kept


def test_writers_on_other_hosts_are_judged_by_age() -> None:
    """A writer on another host is gone only once silent longer than stale_after."""
    assert not writer_is_gone("elsewhere:123:456", age_s=10, stale_after_s=60)
    assert writer_is_gone("elsewhere:123:456", age_s=61, stale_after_s=60)
