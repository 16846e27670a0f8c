"""Deleting index rows nobody can see any more: retired row sets past their grace, and abandoned writes.

A replaced or taken-down version's rows stay in the index, hidden, for ``grace`` seconds after it
was retired, so that a search which read the catalog just before (in any process) still finds the
version it believes live. Searches of this process are also waited for (`LocalReaders`), which
is all that is needed on Milvus Lite, where no other process can search. The bound: a search
that takes longer than ``grace`` may miss a document replaced meanwhile; the HTTP service cuts
requests at 60 s and the server default grace is 120 s.

Pending versions whose writer is gone (killed on this host, or silent past ``stale_after`` on
another) are abandoned: their rows are retired at once, then deleted like any other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from cairn.catalog.protocol import Catalog
from cairn.catalog.records import CollectionState, RowSet
from cairn.catalog.writers import writer_is_gone

__all__ = ["Janitor", "LocalReaders", "sweep"]


class LocalReaders:
    """The searches running in this process, by start time, so deletions can wait for older ones."""

    def __init__(self) -> None:
        self._started: dict[int, float] = {}
        self._next = 0
        self._changed = threading.Condition()

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._changed:
            ticket = self._next
            self._next += 1
            self._started[ticket] = time.time()
        try:
            yield
        finally:
            with self._changed:
                del self._started[ticket]
                self._changed.notify_all()

    def wait_for_readers_before(self, moment: float, timeout: float = 60.0) -> bool:
        """Block until no search that started before *moment* is still running; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: all(s > moment for s in self._started.values()), timeout=timeout)


def sweep(
    catalog: Catalog,
    state: CollectionState,
    *,
    delete_rows: Callable[[str, Sequence[RowSet]], None],
    readers: LocalReaders,
    grace_s: float,
    stale_after_s: float,
    forget_files: Callable[[RowSet, int], None] | None = None,
) -> int:
    """Abandon dead writers' pending versions and delete retired rows past the grace; return row sets deleted.

    *forget_files* deletes an abandoned version's files from the vault (its chunk file and record),
    so that a catalog rebuilt from the vault never brings back a version that was never live.
    """
    now = time.time()
    dead = [
        pending.rowset
        for pending in catalog.pending_versions(state.name)
        if writer_is_gone(pending.writer, age_s=now - pending.created_at, stale_after_s=stale_after_s)
    ]
    if dead:
        catalog.abandon(state.name, dead, generation=state.generation)
        if forget_files is not None:
            for rowset in dead:
                forget_files(rowset, state.generation)
    cutoff = now - grace_s
    due = catalog.retired_rows(state.name, before=cutoff)
    if not due:
        return 0
    readers.wait_for_readers_before(cutoff)
    by_generation: dict[int, list[RowSet]] = {}
    for rowset, generation in due:
        by_generation.setdefault(generation, []).append(rowset)
    for generation, rowsets in by_generation.items():
        if generation == state.generation:  # older generations' engine collections are dropped whole
            delete_rows(state.of_generation(generation), rowsets)
    catalog.forget_retired(state.name, [rowset for rowset, _ in due])
    return len(due)


class Janitor:
    """`sweep` with one process's settings, engine and vault: what writers, maintenance and workers call."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        delete_rows: Callable[[str, Sequence[RowSet]], None],
        forget_files: Callable[[str, RowSet, int], None],
        readers: LocalReaders,
        grace_s: float,
        stale_after_s: float,
    ) -> None:
        self.catalog = catalog
        self.delete_rows = delete_rows
        self.forget_files = forget_files
        self.readers = readers
        self.grace_s = grace_s
        self.stale_after_s = stale_after_s

    def sweep(self, state: CollectionState) -> int:
        return sweep(
            self.catalog,
            state,
            delete_rows=self.delete_rows,
            readers=self.readers,
            grace_s=self.grace_s,
            stale_after_s=self.stale_after_s,
            forget_files=lambda rowset, generation: self.forget_files(state.name, rowset, generation),
        )
