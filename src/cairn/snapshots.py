"""Consistent reads while ingestion changes a collection.

Readers take a *snapshot* of a collection's manifest and filter the index by it. A writer that
replaces a document version publishes a new manifest first and deletes the old rows only after
every reader that might still be using an older snapshot has finished. So a search sees exactly
one version of each document: never both, never neither.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from cairn.vault.manifest import Manifest

__all__ = ["LiveManifest"]


class LiveManifest:
    """The current manifest of one collection, shared by the readers and the writer of a process."""

    def __init__(self, manifest: Manifest) -> None:
        self._manifest = manifest
        self._epoch = 0
        self._readers: dict[int, int] = {}
        self._changed = threading.Condition()
        self.write_lock = threading.Lock()
        """Held by the one writer of this collection for the length of an ingest or delete."""

    @contextmanager
    def snapshot(self) -> Iterator[Manifest]:
        """The manifest as published now; treat it as read-only."""
        with self._changed:
            epoch, manifest = self._epoch, self._manifest
            self._readers[epoch] = self._readers.get(epoch, 0) + 1
        try:
            yield manifest
        finally:
            with self._changed:
                self._readers[epoch] -= 1
                if not self._readers[epoch]:
                    del self._readers[epoch]
                self._changed.notify_all()

    def draft(self) -> Manifest:
        """A private copy for the writer to change and then ``publish``."""
        with self._changed:
            return copy.deepcopy(self._manifest)

    def publish(self, manifest: Manifest) -> int:
        """Make *manifest* what new readers see; return its epoch."""
        with self._changed:
            self._manifest = copy.deepcopy(manifest)
            self._epoch += 1
            return self._epoch

    def wait_for_readers(self, epoch: int, timeout: float = 30.0) -> bool:
        """Block until no reader holds a snapshot older than *epoch*; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: all(e >= epoch for e in self._readers), timeout=timeout)
