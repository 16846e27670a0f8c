"""Ingest jobs run in the background of the HTTP service: one worker thread, progress kept in memory.

A job belongs to the key that started it; listings show a key the jobs of its tenant only.
Jobs are not persisted: a restarted service forgets finished jobs (their documents are, of
course, in the vault).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from pydantic import BaseModel, Field

from cairn.errors import CairnError, NotFound
from cairn.ingest import IngestProgress
from cairn.models import IngestReport

__all__ = ["Job", "JobBoard"]

JobState = Literal["queued", "running", "done", "failed"]


class Job(BaseModel):
    job_id: str
    collection: str
    tenant: str
    owner: str
    state: JobState = "queued"
    files: int = 0
    done: int = 0
    current: str | None = None
    created_at: float = Field(default_factory=time.time)
    finished_at: float | None = None
    report: IngestReport | None = None
    error: str | None = None


class JobBoard:
    """Runs ingest jobs one at a time (ingests into one collection serialise anyway) and tracks them."""

    def __init__(self, keep: int = 1000) -> None:
        self._jobs: dict[str, Job] = {}
        self._changed = threading.Condition()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cairn-ingest")
        self._keep = keep

    def submit(
        self,
        *,
        collection: str,
        tenant: str,
        owner: str,
        run: Callable[[Callable[[IngestProgress], None]], IngestReport],
    ) -> Job:
        job = Job(job_id=secrets.token_hex(8), collection=collection, tenant=tenant, owner=owner)
        with self._changed:
            self._jobs[job.job_id] = job
            while len(self._jobs) > self._keep:
                oldest = next(iter(self._jobs))
                del self._jobs[oldest]
        self._executor.submit(self._run, job.job_id, run)
        return job

    def _update(self, job_id: str, **fields: object) -> None:
        with self._changed:
            job = self._jobs.get(job_id)
            if job is not None:
                self._jobs[job_id] = job.model_copy(update=fields)
            self._changed.notify_all()

    def _run(self, job_id: str, run: Callable[[Callable[[IngestProgress], None]], IngestReport]) -> None:
        self._update(job_id, state="running")

        def progress(step: IngestProgress) -> None:
            self._update(job_id, files=step.total, done=step.done, current=step.path.rsplit("/", 1)[-1])

        try:
            report = run(progress)
        except CairnError as exc:
            self._update(job_id, state="failed", error=str(exc), finished_at=time.time())
        except Exception as exc:  # the job fails; the service goes on
            self._update(
                job_id, state="failed", error=f"internal error ({type(exc).__name__})", finished_at=time.time()
            )
        else:
            self._update(job_id, state="done", report=report, current=None, finished_at=time.time())

    def get(self, job_id: str, *, tenant: str | None) -> Job:
        with self._changed:
            job = self._jobs.get(job_id)
        if job is None or (tenant is not None and job.tenant != tenant):
            raise NotFound(f"no job {job_id!r}")
        return job

    def list(self, *, tenant: str | None) -> list[Job]:
        with self._changed:
            return [j for j in self._jobs.values() if tenant is None or j.tenant == tenant]

    def follow(self, job_id: str, *, tenant: str | None, timeout: float = 600.0) -> Iterator[Job]:
        """The job each time it changes, until it has finished (or *timeout* passes)."""
        deadline = time.monotonic() + timeout
        last: Job | None = None
        while True:
            job = self.get(job_id, tenant=tenant)
            if job != last:
                yield job
                last = job
            if job.state in ("done", "failed") or time.monotonic() > deadline:
                return
            with self._changed:
                self._changed.wait(timeout=1.0)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
