"""Parse files in worker processes, each file under a time limit and each worker under a memory cap.

Parsers run third-party code (PDFium, libxml2, Pillow, tesseract, tree-sitter) on untrusted
bytes. In a worker process, a parser that hangs is killed when the file's time is up, one that
allocates without bound hits the worker's address-space limit (``RLIMIT_AS``, which the
``tesseract`` child inherits too), and one that crashes takes only its worker down; pebble
replaces the worker, and the file is reported with the reason. The ingest process never runs a
parser itself.

Workers are forked from a forkserver that has imported the parsers once, so a replacement
starts in milliseconds and shares no threads or locks with the (multi-threaded) ingest process.
They are started through `cairn._spawn`, so they never run the user's ``__main__`` again (a
script without a main guard would otherwise be run once more in every worker).
Files are handed out in order, up to ``window`` files ahead of the consumer, and results come
back as they finish: a slow file (a long scanned PDF) never holds up the files behind it, and
while the ingest process embeds one batch, the workers parse the next files.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

from pebble import ProcessExpired, ProcessFuture, ProcessPool

from cairn._spawn import forkserver_context
from cairn.embed.local import WORKER_NICENESS
from cairn.errors import LimitExceeded, ParseError, UnsupportedFormat
from cairn.models import FailedFile

from . import ParsedDocument, ParseLimits, parse_file

__all__ = ["ParseOutcome", "ParsePool"]

# Imported once by the forkserver, so that every worker starts with the parsers loaded.
_PRELOAD = [
    "cairn.parse",
    "cairn.parse.pdf",
    "cairn.parse.html",
    "cairn.parse.markdown",
    "cairn.parse.archive",
]


@dataclass(frozen=True)
class ParseOutcome:
    """What became of one file: parsed (with the hash of the exact bytes parsed), skipped or failed."""

    path: str
    parsed: ParsedDocument | None = None
    sha256: str = ""
    size: int = 0
    problem: FailedFile | None = None
    skipped: bool = False
    seconds: float = 0.0


def _limit_worker(memory_bytes: int) -> None:
    """Worker initializer: cap the address space, keep OCR to one thread, yield the CPU to queries."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    os.nice(WORKER_NICENESS)  # parsing is background work, as document embedding is
    os.environ["OMP_THREAD_LIMIT"] = "1"
    # The ingest process handles Ctrl-C and stops the pool; workers must not die mid-file first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _parse_in_worker(path: str, limits: ParseLimits) -> tuple[str, int, ParsedDocument, float]:
    started = time.perf_counter()
    data = Path(path).read_bytes()
    parsed = parse_file(data, path=path, limits=limits)
    return hashlib.sha256(data).hexdigest(), len(data), parsed, time.perf_counter() - started


class ParsePool:
    """A pool of parser processes; `parse` maps paths to outcomes as they finish, never raising per file."""

    def __init__(self, *, workers: int, timeout_s: float, memory_mb: int, limits: ParseLimits | None = None) -> None:
        self.workers = max(1, workers)
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.limits = limits or ParseLimits()
        self._pool: ProcessPool | None = None

    def _ensure(self) -> ProcessPool:
        if self._pool is None or not self._pool.active:
            context = forkserver_context()
            context.set_forkserver_preload(_PRELOAD)
            self._pool = ProcessPool(
                max_workers=self.workers,
                initializer=_limit_worker,
                initargs=(self.memory_mb * 1024 * 1024,),
                context=context,
            )
        return self._pool

    def parse(self, paths: Iterable[str], *, window: int | None = None) -> Iterator[ParseOutcome]:
        """Parse each path in a worker; yield one outcome per path, in the order they finish."""
        pool = self._ensure()
        ahead = window or self.workers * 4
        pending: dict[ProcessFuture[tuple[str, int, ParsedDocument, float]], str] = {}
        iterator = iter(paths)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < ahead:
                    path = next(iterator, None)
                    if path is None:
                        exhausted = True
                        break
                    future = pool.schedule(_parse_in_worker, (path, self.limits), timeout=self.timeout_s)
                    pending[future] = path
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                # Dicts keep insertion order: finished files are reported in the order they were given.
                for future in [f for f in pending if f in done]:
                    yield self._outcome(pending.pop(future), future)
        finally:
            for future in pending:
                future.cancel()  # type: ignore[no-untyped-call]

    def _outcome(self, path: str, future: ProcessFuture[tuple[str, int, ParsedDocument, float]]) -> ParseOutcome:
        try:
            digest, size, parsed, seconds = future.result()
        except UnsupportedFormat as exc:
            return ParseOutcome(path=path, problem=FailedFile(path=path, error=str(exc)), skipped=True)
        except ParseError as exc:
            return ParseOutcome(path=path, problem=FailedFile(path=path, error=str(exc)))
        except FutureTimeout:
            error = LimitExceeded(
                f"parsing took longer than {self.timeout_s:g} s and was stopped; if the file is sound but "
                "large (a long scanned PDF), raise CAIRN_PARSE_TIMEOUT_S"
            )
            return ParseOutcome(path=path, problem=FailedFile(path=path, error=str(error)))
        except ProcessExpired as exc:
            return ParseOutcome(path=path, problem=FailedFile(path=path, error=_died(exc, self.memory_mb)))
        except OSError as exc:
            return ParseOutcome(path=path, problem=FailedFile(path=path, error=f"cannot read the file: {exc.strerror}"))
        except Exception as exc:  # a parser bug must cost one file, not the run
            return ParseOutcome(
                path=path, problem=FailedFile(path=path, error=f"unexpected {type(exc).__name__}: {exc}")
            )
        return ParseOutcome(path=path, parsed=parsed, sha256=digest, size=size, seconds=seconds)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()  # type: ignore[no-untyped-call]
            self._pool.join()
            self._pool = None


def _failed(path: str, error: str) -> ParseOutcome:
    return ParseOutcome(path=path, problem=FailedFile(path=path, error=error))


def _died(exc: ProcessExpired, memory_mb: int) -> str:
    code = exc.exitcode
    how = f"was killed by signal {-code} ({signal.Signals(-code).name})" if code and code < 0 else f"exited ({code})"
    return (
        f"the parser process {how} while reading this file: the file is malformed in a way that crashes "
        f"its parser, or needs more than the {memory_mb} MiB a parser may use (CAIRN_PARSE_MEMORY_MB)"
    )
