"""Start cairn's worker processes without running the user's ``__main__`` in them.

A process started by multiprocessing's ``spawn`` or ``forkserver`` method first gets the parent's
*preparation data* (``multiprocessing.spawn.get_preparation_data``): sys.path, the working directory
and, unless the main module has neither, ``init_main_from_path`` (a script's ``__file__``) or
``init_main_from_name`` (``python -m pkg.mod``). The child then runs that script or module again
as ``__mp_main__``, so that functions defined in it can be unpickled. That is why the
multiprocessing documentation asks for an ``if __name__ == "__main__":`` guard. Without one, as in
the README's example saved as a script, every parser and embedding worker ran the whole script
again: it opened the same Milvus Lite database (refused: the file is in use) and ingested again.

cairn's workers run only cairn's own functions, importable by name, so they need nothing from
``__main__``. `forkserver_context` and `spawn_context` return multiprocessing contexts whose
``Process`` classes mark their own start on the current thread; the preparation data made for
that start, and only for it, leaves out the two main-module entries. The child then starts as a
child of ``python -c`` does: cairn is imported from sys.path, the user's code never runs. This is
robust where the alternatives are not:

- pebble and ``ProcessPoolExecutor`` start every worker through ``context.Process``, replacements
  of crashed or timed-out workers included (pebble starts those from its own thread), so no start
  escapes, and a process the user starts through multiprocessing keeps the usual behaviour;
- masking ``__main__.__file__``/``__spec__`` (or swapping ``sys.modules["__main__"]``) while a worker
  starts would be seen by every other thread of the user's program at that moment;
- ``set_executable`` is process-wide and changes only the interpreter: the child still reads the
  main module from the preparation data; and ``fork`` would copy a multi-threaded process (the
  engine client, torch), which is why these workers are spawned in the first place.

The mark is kept in a wrapper around ``multiprocessing.spawn.get_preparation_data``, the function
both start methods' ``Popen`` call by module attribute; the wrapper changes nothing unless the
current thread is starting one of cairn's workers, and is put back in place if something replaced it.

Every worker is also tied to the process that started it (`cairn._lifeline`): it is started from that
process's lifeline thread and, once running, ends as soon as that process ends, however it ended.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import spawn
from multiprocessing.context import ForkServerContext, ForkServerProcess, SpawnContext, SpawnProcess
from multiprocessing.process import BaseProcess
from typing import Any

from cairn._lifeline import exit_with_parent, start_on_lifeline_thread

__all__ = ["MAIN_MODULE_KEYS", "forkserver_context", "spawn_context"]

# The preparation data entries that make a child run the parent's main module again.
MAIN_MODULE_KEYS = ("init_main_from_path", "init_main_from_name")

_starting = threading.local()  # .depth > 0 while this thread starts one of cairn's workers
_install_lock = threading.Lock()


def _preparation_data_of(original: Callable[[str], dict[str, Any]]) -> Callable[[str], dict[str, Any]]:
    def preparation_data(name: str) -> dict[str, Any]:
        data = original(name)
        if getattr(_starting, "depth", 0):
            for key in MAIN_MODULE_KEYS:
                data.pop(key, None)
        return data

    preparation_data.cairn_withholds_main = True  # type: ignore[attr-defined]
    return preparation_data


@contextmanager
def _main_module_withheld() -> Iterator[None]:
    """While this thread starts a worker, its preparation data names no main module."""
    with _install_lock:
        if not getattr(spawn.get_preparation_data, "cairn_withholds_main", False):
            wrapped = _preparation_data_of(spawn.get_preparation_data)
            spawn.get_preparation_data = wrapped  # type: ignore[assignment]  # same signature, a plain Callable
    _starting.depth = getattr(_starting, "depth", 0) + 1
    try:
        yield
    finally:
        _starting.depth -= 1


def _start_tied(start: Callable[[BaseProcess], Any], process_obj: BaseProcess) -> Any:
    """Start the worker from the process's lifeline thread (its parent-death signal then means this process)."""

    def started() -> Any:
        with _main_module_withheld():
            return start(process_obj)

    return start_on_lifeline_thread(started)


class _ForkServerWorker(ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: BaseProcess) -> Any:
        return _start_tied(ForkServerProcess._Popen, process_obj)

    def run(self) -> None:
        exit_with_parent()  # in the worker: it ends when the process that started it ends (cairn._lifeline)
        super().run()


class _SpawnWorker(SpawnProcess):
    @staticmethod
    def _Popen(process_obj: BaseProcess) -> Any:
        return _start_tied(SpawnProcess._Popen, process_obj)

    def run(self) -> None:
        exit_with_parent()
        super().run()


class _WorkerForkServerContext(ForkServerContext):
    Process = _ForkServerWorker


class _WorkerSpawnContext(SpawnContext):
    Process = _SpawnWorker


def forkserver_context() -> ForkServerContext:
    """The ``forkserver`` context for cairn's workers, minus the re-run of ``__main__``.

    Pass it wherever a context is taken (pebble's ``context=``); the forkserver itself (one per
    process, shared with other users of the method) is configured as usual (``set_forkserver_preload``).
    """
    return _WorkerForkServerContext()


def spawn_context() -> SpawnContext:
    """The ``spawn`` context for cairn's workers (``ProcessPoolExecutor(mp_context=...)``), minus ``__main__``."""
    return _WorkerSpawnContext()
