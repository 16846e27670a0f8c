"""Child processes that end when the process that started them ends, however it ends.

Every process cairn starts is tied to its owner, so that no parser, embedding worker or server is
left running, re-parented to PID 1, after the owner is stopped (SIGTERM, Ctrl-C) or killed (``kill -9``):

- **Python workers** (parser pool, embedding worker; started through `cairn._spawn`) call
  `exit_with_parent` first thing: the kernel's parent-death signal (``prctl(PR_SET_PDEATHSIG)``)
  plus a watchdog thread that waits on multiprocessing's *parent sentinel*, a pipe whose write end
  only the starting process holds, and exits the moment it reaches end of file. The watchdog is what
  ends workers forked by a forkserver: their kernel parent is the forkserver, which itself only exits
  once every one of its children has (they hold its "alive" pipe). multiprocessing's forkserver and
  resource tracker then end by themselves: each exits when the last holder of its pipe is gone.
- **Server binaries** (SeaweedFS, Milvus, PostgreSQL) started by an owner that is not `cairn stack up`
  run under `setpriv --pdeathsig SIG`, innermost in their command, after any change of account or
  namespace (a change of credentials clears the signal): ``owned_command``.
- `cairn stack up` *detaches* its servers instead: they are meant to outlive the command, and
  `cairn stack down` stops them.

The parent-death signal fires when the *thread* that forked the child ends, not the process. A
worker started from a short-lived thread (an HTTP request thread, which anyio ends after ten idle
seconds) would be killed with it; so every start goes through `start_on_lifeline_thread`: one daemon
thread per process that lives until the process itself exits.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.connection
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = [
    "ORPHANED_EXIT_CODE",
    "exit_with_parent",
    "owned_command",
    "popen_on_lifeline_thread",
    "set_parent_death_signal",
    "start_on_lifeline_thread",
]

T = TypeVar("T")

# prctl(2): the option that sets the signal this process gets when its parent (thread) dies.
_PR_SET_PDEATHSIG = 1
# The exit code of a worker that ended because its parent was gone.
ORPHANED_EXIT_CODE = 86


def set_parent_death_signal(signum: int = signal.SIGKILL) -> bool:
    """Have the kernel send *signum* to this process when the thread that started it ends (Linux only).

    Returns False where it cannot be set (another system), so the caller relies on its watchdog alone.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols, libc's prctl among them
    return int(libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0


def _exit_at_end_of_file(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(ORPHANED_EXIT_CODE)  # nothing to save: the work was the parent's, and the parent is gone


def exit_with_parent() -> None:
    """In a multiprocessing child: end at once when the process that started it ends.

    Sets the parent-death signal (for a forkserver's child, its parent is the forkserver) and starts a
    daemon thread that waits on the parent sentinel, which reaches end of file when the *starting*
    process is gone, however it ended; if it already has, the child exits here.
    """
    set_parent_death_signal(signal.SIGKILL)
    parent = multiprocessing.parent_process()
    sentinel = getattr(parent, "sentinel", None) if parent is not None else None
    if sentinel is None:
        return
    if multiprocessing.connection.wait([sentinel], timeout=0):
        os._exit(ORPHANED_EXIT_CODE)
    threading.Thread(target=_exit_at_end_of_file, args=(sentinel,), name="cairn-lifeline", daemon=True).start()


class _LifelineThread:
    """One daemon thread per process that starts cairn's children, so their parent-death signal means
    the death of this process, not of whichever thread happened to need a worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._requests: queue.SimpleQueue[tuple[Callable[[], object], Future[object]]] = queue.SimpleQueue()

    def call(self, start: Callable[[], T]) -> T:
        if threading.current_thread() is self._thread:
            return start()
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._requests = queue.SimpleQueue()  # a fork's child gets a fresh thread and queue
                self._thread = threading.Thread(target=self._serve, name="cairn-lifeline-starter", daemon=True)
                self._pid = os.getpid()
                self._thread.start()
            requests = self._requests
        done: Future[object] = Future()
        requests.put((start, done))
        return done.result()  # type: ignore[return-value]  # the future holds what start() returned

    def _serve(self) -> None:
        requests = self._requests
        while True:
            start, done = requests.get()
            try:
                done.set_result(start())
            except BaseException as exc:  # handed to the caller, who raises it in its own thread
                done.set_exception(exc)


_starter = _LifelineThread()


def start_on_lifeline_thread(start: Callable[[], T]) -> T:
    """Run *start* (which forks or spawns a child) on this process's long-lived starter thread; return its result."""
    return _starter.call(start)


def owned_command(command: Sequence[str], signum: int = signal.SIGTERM) -> list[str]:
    """*command* run so that it gets *signum* when its owner (the thread that runs Popen) ends.

    Put it innermost, after any prefix that changes account or namespace. Without ``setpriv``
    (util-linux) the command is returned unchanged: on such a host the owner's `stop()` and `atexit`
    are all that stop the server.
    """
    if not sys.platform.startswith("linux") or shutil.which("setpriv") is None:
        return list(command)
    return ["setpriv", f"--pdeathsig={signal.Signals(signum).name.removeprefix('SIG')}", "--", *command]


def popen_on_lifeline_thread(command: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen` (bytes I/O) from the lifeline thread, for a command made by `owned_command`."""
    return start_on_lifeline_thread(lambda: subprocess.Popen(list(command), **options))
