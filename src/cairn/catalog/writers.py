"""Who wrote a pending version, and whether that writer can still finish it.

A writer is named ``host:pid:start``, the start time telling a live process from a later one that
reuses its pid. A pending version whose writer ran on this host and is gone can never be published:
its rows are abandoned at once. Writers on other hosts are judged by age (``stale_after``).
"""

from __future__ import annotations

import os
import socket
from functools import cache

__all__ = ["this_process", "writer_is_gone"]


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return fields[19]  # starttime, in clock ticks since boot
    except (OSError, IndexError):
        return None


@cache
def this_process() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '?'}"


def writer_is_gone(writer: str | None, *, age_s: float, stale_after_s: float) -> bool:
    """True when the writer can no longer publish: dead on this host, or silent longer than *stale_after_s*."""
    if writer is None:
        return age_s > stale_after_s
    host, _, rest = writer.partition(":")
    pid_text, _, started = rest.partition(":")
    if host == socket.gethostname() and pid_text.isdigit():
        now = _start_time(int(pid_text))
        return now is None or (started != "?" and now != started)
    return age_s > stale_after_s
