"""The service's view of the durable jobs in the catalog, and the worker it runs beside the API.

Jobs are rows of the catalog (`cairn.jobs.queue`), so every replica answers for every job, and a
restarted service forgets nothing. A job belongs to the key that started it; a key sees the jobs
of its own tenant, in the collections it may use, and the file names in them only when it is the
job's owner or an admin of the tenant (`shown`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from cairn.auth import Principal
from cairn.errors import NotFound
from cairn.jobs import Job, JobQueue, Worker, queue_for
from cairn.models import FailedFile, FileWarning

if TYPE_CHECKING:
    from cairn.core import Cairn

__all__ = ["Job", "JobBoard", "shown"]

# How often an event stream reads its job again: a change made by a worker in any process shows within this.
POLL_S = 0.5
_HIDDEN = "(hidden)"


class JobBoard:
    """Reads jobs from the catalog for the routes; with *worker*, runs a worker from `start` to `close`."""

    def __init__(self, cairn: Cairn, *, worker: bool = True, stop_timeout_s: float = 10.0) -> None:
        self.cairn = cairn
        self._run_worker = worker
        self._stop_timeout_s = stop_timeout_s
        self._worker: Worker | None = None

    @property
    def queue(self) -> JobQueue:
        return queue_for(self.cairn.catalog)

    @property
    def worker(self) -> Worker | None:
        return self._worker

    def start(self) -> None:
        """Start the embedded worker, if the service runs one."""
        if self._run_worker and self._worker is None:
            self._worker = Worker(self.cairn)  # opens the catalog in its own thread
            self._worker.start()

    def get(self, job_id: str, *, tenant: str | None) -> Job:
        """The job, if it is *tenant*'s (any tenant's for ``None``); `NotFound` alike otherwise."""
        try:
            job = self.queue.get(job_id)
        except NotFound:
            job = None
        if job is None or (tenant is not None and job.tenant != tenant):
            raise NotFound(f"no job {job_id!r}")
        return job

    def list(self, *, tenant: str | None, limit: int = 200) -> list[Job]:
        return self.queue.list(tenant, limit=limit)

    def follow(self, job_id: str, *, tenant: str | None, timeout: float = 600.0) -> Iterator[Job]:
        """The job each time it changes, until it has finished (or *timeout* passes); read from the catalog."""
        deadline = time.monotonic() + timeout
        last: Job | None = None
        while True:
            job = self.get(job_id, tenant=tenant)
            if job != last:
                yield job
                last = job
            if job.finished or time.monotonic() > deadline:
                return
            time.sleep(POLL_S)

    def close(self) -> None:
        """Stop the embedded worker after its current job (waiting a bounded time; a job cut short runs again)."""
        if self._worker is not None:
            self._worker.stop(timeout=self._stop_timeout_s)
            self._worker = None


def shown(job: Job, principal: Principal | None) -> Job:
    """*job* as *principal* may see it: its owner and the tenant's admins see the file names, others do not."""
    if principal is None or principal.key_id == job.owner or principal.role == "admin":
        return job
    report = job.report
    if report is not None:
        hidden = [FailedFile(path=_HIDDEN, error=_HIDDEN)]
        report = report.model_copy(
            update={
                "failed": hidden * len(report.failed),
                "skipped": hidden * len(report.skipped),
                "warnings": [FileWarning(path=_HIDDEN, message=_HIDDEN)] * len(report.warnings),
            }
        )
    error = "the job failed; the key that started it can see why" if job.error is not None else None
    return job.model_copy(update={"current": None, "report": report, "error": error})
