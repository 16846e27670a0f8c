"""Parser processes: files come back in order, and a hang, a memory blow-up or a crash costs one file."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from cairn.embed.local import WORKER_NICENESS
from cairn.parse.pool import ParsePool


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    (tmp_path / "a.md").write_text("# Alpha\n\nThe first file.\n")
    (tmp_path / "b.txt").write_text("The second file.\n")
    (tmp_path / "c.bin").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(100))
    (tmp_path / "d.txt").write_bytes(b"")
    # Markdown the parser needs seconds and hundreds of MiB for: 400k list items.
    (tmp_path / "huge.md").write_text("".join(f"- item {i} with some words\n" for i in range(400_000)))
    return tmp_path


@contextmanager
def _pool(workers: int = 2, timeout_s: float = 60.0, memory_mb: int = 2048) -> Iterator[ParsePool]:
    pool = ParsePool(workers=workers, timeout_s=timeout_s, memory_mb=memory_mb)
    try:
        yield pool
    finally:
        pool.close()


def test_every_file_gets_one_outcome_with_hash_and_format(corpus: Path) -> None:
    """Parsed, skipped and failed files are each reported once, with the parsed bytes' hash."""
    names = ("a.md", "b.txt", "c.bin", "d.txt", "gone.txt")
    with _pool() as pool:
        by_name = {Path(o.path).name: o for o in pool.parse([str(corpus / n) for n in names])}

    assert sorted(by_name) == sorted(names)
    outcomes = [by_name[n] for n in names]
    first = outcomes[0]
    assert first.parsed is not None
    assert first.parsed.format == "Markdown"
    assert [e.text for e in first.parsed.elements] == ["Alpha", "The first file."]
    assert first.sha256 == hashlib.sha256((corpus / "a.md").read_bytes()).hexdigest()
    assert outcomes[2].skipped
    assert outcomes[2].problem is not None
    assert "executable" in outcomes[2].problem.error
    assert not outcomes[3].skipped
    assert outcomes[3].problem is not None
    assert "empty" in outcomes[3].problem.error
    assert outcomes[4].problem is not None
    assert "No such file" in outcomes[4].problem.error


def test_parser_processes_run_at_a_lower_cpu_priority_than_the_process_serving_queries(corpus: Path) -> None:
    with _pool(workers=1) as pool:
        list(pool.parse([str(corpus / "a.md")]))
        # The workers are forked by the forkserver process.
        workers = [
            p for p in psutil.Process().children(recursive=True) if "forkserver" in " ".join(p.parent().cmdline())
        ]
        assert workers
        assert {worker.nice() for worker in workers} == {psutil.Process().nice() + WORKER_NICENESS}


def test_a_file_that_takes_too_long_is_stopped_and_the_next_one_parses(corpus: Path) -> None:
    """Past the time limit the worker is killed, the file reported, and later files still parse."""
    with _pool(workers=1, timeout_s=1.0) as pool:
        started = time.perf_counter()
        slow, after = pool.parse([str(corpus / "huge.md"), str(corpus / "b.txt")])
        elapsed = time.perf_counter() - started

    assert slow.problem is not None
    assert "longer than 1 s" in slow.problem.error
    assert after.parsed is not None
    assert after.parsed.elements[0].text == "The second file."
    assert elapsed < 20


def test_a_parser_over_its_memory_limit_fails_that_file_only(corpus: Path) -> None:
    """With a small address-space cap, the memory-hungry file fails with a reason naming memory."""
    with _pool(workers=1, memory_mb=600) as pool:
        hungry, after = pool.parse([str(corpus / "huge.md"), str(corpus / "b.txt")])

    assert hungry.problem is not None
    assert "memory" in hungry.problem.error.lower()
    assert after.parsed is not None


def test_a_slow_file_does_not_hold_up_the_files_behind_it(corpus: Path) -> None:
    """With two workers, small files given after a slow one come back before it (here: before its timeout)."""
    with _pool(workers=2, timeout_s=3.0) as pool:
        order = [Path(o.path).name for o in pool.parse([str(corpus / n) for n in ("huge.md", "a.md", "b.txt")])]

    assert order == ["a.md", "b.txt", "huge.md"]


def test_a_crashed_worker_costs_one_file(corpus: Path) -> None:
    """A worker killed mid-file (as by a segfault) reports that file; the pool goes on with the next."""
    with _pool(workers=1) as pool:
        outcomes = pool.parse([str(corpus / "huge.md"), str(corpus / "b.txt")])

        def kill_busy_worker() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                workers = [p for p in psutil.Process().children(recursive=True) if p.ppid() != os.getpid()]
                busy = [w for w in workers if w.cpu_percent(interval=0.2) > 50]
                if busy:
                    busy[0].send_signal(signal.SIGKILL)
                    return

        killer = threading.Thread(target=kill_busy_worker)
        killer.start()
        crashed = next(outcomes)
        after = next(outcomes)
        killer.join()

    assert crashed.problem is not None
    assert "killed by signal 9 (SIGKILL)" in crashed.problem.error
    assert after.parsed is not None
    assert after.parsed.elements[0].text == "The second file."
