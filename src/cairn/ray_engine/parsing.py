"""Parsing on a Ray cluster: actors that each own a `ParsePool`, so a file meets the same limits as locally.

A `ParserActor` runs on any node of the cluster. It receives a file's bytes (the driver, which
discovered the files, reads them; the nodes need not see the driver's disk), writes them under its
own temporary folder with the file's own name (the name's extension guides format detection), and
parses them in its `ParsePool`: a parser process under the same time limit (``parse_timeout_s``) and
address-space cap (``parse_memory_mb``) as a local ingest, so a hostile file costs one parser
process on one node and nothing else. The outcome comes back with the driver's path in it.

An actor that dies (its node lost, its process killed) is restarted by Ray and the call retried;
a call that still fails is reported as that file's failure, never as the run's.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import ray

from cairn.models import FailedFile
from cairn.parse import ParsedDocument, ParseLimits
from cairn.parse.pool import ParseOutcome, ParsePool

__all__ = ["ParserActor", "RayParsePool"]

# Calls queued per actor: one parsing, one waiting, so no actor idles between files.
_DEPTH = 2


def _renamed(outcome: ParseOutcome, staged: str, path: str) -> ParseOutcome:
    """The outcome with the staged copy's path replaced by the driver's, in members and warnings too."""

    def named(value: str) -> str:
        return path + value.removeprefix(staged) if value.startswith(staged) else value

    problem = outcome.problem.model_copy(update={"path": named(outcome.problem.path)}) if outcome.problem else None
    parsed = outcome.parsed
    if parsed is not None:
        parsed = ParsedDocument(
            mime=parsed.mime,
            format=parsed.format,
            elements=parsed.elements,
            skipped=[item.model_copy(update={"path": named(item.path)}) for item in parsed.skipped],
            failed=[item.model_copy(update={"path": named(item.path)}) for item in parsed.failed],
            warnings=[item.model_copy(update={"path": named(item.path)}) for item in parsed.warnings],
        )
    return dataclasses.replace(outcome, path=path, parsed=parsed, problem=problem)


class _Parser:
    """The actor's body (see `ParserActor`): a one-process `ParsePool` and a folder to stage files in."""

    def __init__(self, timeout_s: float, memory_mb: int, limits: ParseLimits) -> None:
        self.pool = ParsePool(workers=1, timeout_s=timeout_s, memory_mb=memory_mb, limits=limits)
        self.folder = Path(tempfile.mkdtemp(prefix="cairn-ray-parse-"))

    def parse(self, path: str, data: bytes) -> ParseOutcome:
        staged = self.folder / uuid.uuid4().hex / Path(path).name
        staged.parent.mkdir()
        try:
            staged.write_bytes(data)
            outcome = next(iter(self.pool.parse([str(staged)])))
        finally:
            shutil.rmtree(staged.parent, ignore_errors=True)
        return _renamed(outcome, str(staged), path)

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        self.pool.close()
        shutil.rmtree(self.folder, ignore_errors=True)


ParserActor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=2)(_Parser)


class RayParsePool:
    """`ParsePool`'s interface over parser actors: `parse` yields one outcome per path as they finish."""

    def __init__(self, actors: list[Any]) -> None:
        if not actors:
            raise ValueError("a RayParsePool needs at least one parser actor")
        self.actors = actors

    def parse(self, paths: Iterable[str], *, window: int | None = None) -> Iterator[ParseOutcome]:
        """Parse each path on the cluster; yield one outcome per path, in the order they finish."""
        iterator = iter(paths)
        load = {index: 0 for index in range(len(self.actors))}
        pending: dict[Any, tuple[str, int]] = {}
        exhausted = False
        try:
            while True:
                while not exhausted and min(load.values()) < _DEPTH:
                    path = next(iterator, None)
                    if path is None:
                        exhausted = True
                        break
                    index = min(load, key=load.__getitem__)
                    try:
                        data = Path(path).read_bytes()
                    except OSError as exc:
                        yield _failed(path, f"cannot read the file: {exc.strerror}")
                        continue
                    pending[self.actors[index].parse.remote(path, data)] = (path, index)
                    load[index] += 1
                if not pending:
                    return
                done, _ = ray.wait(list(pending), num_returns=1)
                path, index = pending.pop(done[0])
                load[index] -= 1
                yield self._outcome(path, done[0])
        finally:
            for ref in pending:
                ray.cancel(ref)

    @staticmethod
    def _outcome(path: str, ref: Any) -> ParseOutcome:
        try:
            outcome: ParseOutcome = ray.get(ref)
        except ray.exceptions.RayError as exc:  # the actor died more often than Ray retries
            return _failed(path, f"the parser on the Ray cluster failed on this file ({type(exc).__name__}: {exc})")
        return outcome

    def close(self) -> None:
        ray.get([actor.close.remote() for actor in self.actors])


def _failed(path: str, error: str) -> ParseOutcome:
    return ParseOutcome(path=path, problem=FailedFile(path=path, error=error))
