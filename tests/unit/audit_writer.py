"""A child process that appends to an audit log, for the cross-process tests (spawned, so importable by name)."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from cairn.audit import AuditLog
from cairn.vault import LocalDirStore


def append_many(root: str, writer: str, count: int, start: Any) -> list[int]:
    """Wait at *start* (a multiprocessing Barrier), then append *count* records as *writer*; return their seqs.

    A pause of up to 2 ms between appends stands in for the request each record audits, so the two
    writers' appends overlap in time instead of one finishing before the other gets a turn.
    """
    log = AuditLog(LocalDirStore(Path(root)))
    start.wait()
    seqs = []
    for i in range(count):
        seqs.append(log.append(actor=writer, action="search", documents=[f"{writer}-{i}"]).seq)
        time.sleep(random.uniform(0, 0.002))
    return seqs
