"""The durable job queue: jobs are rows of the catalog's ``jobs`` table, claimed by workers under a lease.

A job is ``queued`` until a worker claims it, ``running`` while a worker holds its lease, then
``done`` or ``failed``. The rules, kept here and not by the callers:

- **Claiming** takes the oldest job nobody can still be working on: a ``queued`` one, or a
  ``running`` one whose lease expired or whose holder was a process on this host that is gone
  (`cairn.catalog.writers`). Each claim counts an attempt. On SQLite the claim is one
  ``BEGIN IMMEDIATE`` transaction, so claimers queue for the write lock; on PostgreSQL the rows
  are locked with ``FOR UPDATE SKIP LOCKED``, so claimers pass each other without waiting. Either
  way no two workers ever hold the same job.
- **Holding** a lease means renewing it (`heartbeat`) before it runs out. Every change a worker
  makes (progress, completion, failure) names the worker and is refused with `LeaseLost` once
  another worker has claimed the job: a worker that stalled past its lease cannot overwrite the
  outcome of the one that took over.
- A job whose run hit a passing fault (the vault, the engine or the catalog unreachable) goes back
  to the queue (`retry`), to be claimed again after a delay. Such a try is counted as a *fault*, not
  as an attempt: an outage is no sign that the job kills workers. The worker decides how long to
  wait and after how many faults to give up (`cairn.jobs.worker`).
- A job whose workers kept dying (``max_attempts`` claims without an outcome) ends ``failed`` with
  an error that says so, instead of taking down worker after worker.

Jobs must be safe to run again from the start: a re-claimed job is re-run whole (an upload's
ingest skips what the first attempt already committed, by content hash).
"""

from __future__ import annotations

import builtins
import secrets
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Row, delete, insert, or_, select, update

from cairn.catalog import Catalog, SqlCatalog
from cairn.catalog import schema as t
from cairn.catalog.engine import write_transaction
from cairn.catalog.sql import _Reading  # reads whose database failures are CatalogErrors, as the catalog's own
from cairn.catalog.writers import writer_is_gone
from cairn.errors import ConfigError, LeaseLost, NotFound
from cairn.models import IngestReport

__all__ = ["MAX_ATTEMPTS", "ClaimedJob", "Job", "JobQueue", "JobState", "queue_for"]

JobState = Literal["queued", "running", "done", "failed"]
FINISHED: tuple[JobState, ...] = ("done", "failed")
MAX_ATTEMPTS = 3

_jobs = t.jobs
# Events of the workers in this process, set when a job is enqueued here, so they need not wait for their poll.
_listeners: set[threading.Event] = set()
_listeners_lock = threading.Lock()


class Job(BaseModel):
    """A job as the API shows it: what, where, whose, how far, and how it ended."""

    job_id: str
    collection: str
    tenant: str
    owner: str
    state: JobState = "queued"
    files: int = 0
    done: int = 0
    current: str | None = None
    created_at: float
    finished_at: float | None = None
    report: IngestReport | None = None
    error: str | None = None
    kind: str = "upload"
    attempts: int = 0
    # Tries that met an outage and were put back in the queue (see `JobQueue.retry`).
    faults: int = 0

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


class ClaimedJob(Job):
    """A job a worker holds: the view, with what the worker needs to run it (never shown by the API)."""

    payload: dict[str, Any]
    worker: str
    lease_until: float


def queue_for(catalog: Catalog) -> JobQueue:
    """The job queue in *catalog*'s database."""
    if not isinstance(catalog, SqlCatalog):
        raise ConfigError(f"jobs need a SQL catalog; {catalog.describe()} is not one")
    return JobQueue(catalog.engine)


class JobQueue:
    """Jobs in the catalog database (SQLite or PostgreSQL), shared by every process that opens it."""

    def __init__(self, engine: Engine, *, max_attempts: int = MAX_ATTEMPTS) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self.engine = engine
        self.max_attempts = max_attempts

    # -- submitting and reading --------------------------------------------------------------------
    def enqueue(
        self,
        kind: str,
        collection: str,
        tenant: str,
        owner: str,
        payload: dict[str, Any],
        *,
        job_id: str | None = None,
    ) -> Job:
        """Record a new ``queued`` job; once this returns, the job survives any process."""
        now = time.time()
        values = {
            "job_id": job_id or secrets.token_hex(8),
            "kind": kind,
            "collection": collection,
            "tenant": tenant,
            "owner": owner,
            "state": "queued",
            "payload": payload,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        with write_transaction(self.engine) as connection:
            connection.execute(insert(_jobs).values(**values))
        with _listeners_lock:
            for event in _listeners:
                event.set()
        return _job(values)

    def get(self, job_id: str) -> Job:
        with _Reading(self.engine) as connection:
            row = connection.execute(select(_jobs).where(_jobs.c.job_id == job_id)).first()
        if row is None:
            raise NotFound(f"no job {job_id!r}")
        return _job(row._mapping)

    def list(self, tenant: str | None = None, *, limit: int = 200) -> builtins.list[Job]:
        """The newest *limit* jobs (of *tenant*, or of all), oldest first."""
        query = select(_jobs).order_by(_jobs.c.created_at.desc(), _jobs.c.job_id.desc()).limit(limit)
        if tenant is not None:
            query = query.where(_jobs.c.tenant == tenant)
        with _Reading(self.engine) as connection:
            rows = connection.execute(query).all()
        return [_job(row._mapping) for row in reversed(rows)]

    # -- working -------------------------------------------------------------------------------------
    def claim(self, worker: str, lease_s: float) -> ClaimedJob | None:
        """The oldest job nobody can still be working on, now held by *worker* for *lease_s*; ``None`` if none.

        A job whose earlier holders all died (``max_attempts`` claims) is failed here instead.
        """
        now = time.time()
        with _Reading(self.engine) as connection:
            if not self._claimable(connection, now):
                return None  # an idle poll reads only: it never takes SQLite's write lock from a writer
        with write_transaction(self.engine) as connection:
            for row in self._claimable(connection, now):
                if row.attempts >= self.max_attempts:
                    self._give_up(connection, row, now)
                    continue
                changes = {
                    "state": "running",
                    "attempts": row.attempts + 1,
                    "lease_holder": worker,
                    "lease_until": now + lease_s,
                    "updated_at": now,
                }
                connection.execute(update(_jobs).where(_jobs.c.job_id == row.job_id).values(**changes))
                return ClaimedJob.model_validate(
                    {**_job(row._mapping).model_dump(), **changes, "payload": row.payload, "worker": worker}
                )
        return None

    def heartbeat(self, job_id: str, worker: str, lease_s: float) -> None:
        """Extend *worker*'s lease on the job to *lease_s* from now; `LeaseLost` if it no longer holds it."""
        now = time.time()
        self._change(job_id, worker, lease_until=now + lease_s, updated_at=now)

    def progress(
        self, job_id: str, worker: str, files: int, done: int, current: str | None, *, faults: int = 0
    ) -> None:
        """Record how far the job is: *done* of *files*, now at *current* (a document's name); *faults* carries
        the job's count of tries that met an outage (kept in the same record)."""
        progress = {"files": files, "done": done, "current": current, "faults": faults}
        self._change(job_id, worker, progress=progress, updated_at=time.time())

    def complete(self, job_id: str, worker: str, report: IngestReport) -> Job:
        """End the job ``done`` with *report*; `LeaseLost` if *worker* no longer holds it."""
        return self._finish(job_id, worker, "done", report=report.model_dump(mode="json"), error=None)

    def fail(self, job_id: str, worker: str, error: str) -> Job:
        """End the job ``failed`` with *error* (for the job's owner to read); `LeaseLost` if *worker* lost it."""
        return self._finish(job_id, worker, "failed", error=error)

    def retry(self, job_id: str, worker: str, error: str, *, after_s: float) -> Job:
        """Put the job back in the queue after a passing fault, to be claimed no sooner than *after_s* from now;
        *error* says why. The claim is given back (a fault is no attempt) and the job's fault count grows."""
        now = time.time()
        held = (_jobs.c.job_id == job_id) & (_jobs.c.lease_holder == worker) & (_jobs.c.state == "running")
        with write_transaction(self.engine) as connection:
            row = connection.execute(select(_jobs.c.attempts, _jobs.c.progress).where(held)).first()
            if row is not None:
                progress = dict(row.progress or {})
                progress["faults"] = int(progress.get("faults", 0)) + 1
                # A queued job's lease_until is the time before which it is not claimed.
                changes = {
                    "state": "queued",
                    "attempts": max(0, (row.attempts or 0) - 1),
                    "progress": progress,
                    "lease_holder": None,
                    "lease_until": now + after_s,
                    "error": error,
                    "updated_at": now,
                }
                connection.execute(update(_jobs).where(held).values(**changes))
        if row is None:
            raise LeaseLost(
                f"job {job_id} is no longer held by {worker}: its lease ran out and another worker claimed it",
                job_id=job_id,
            )
        return self.get(job_id)

    def finished(self, job_ids: Sequence[str]) -> set[str]:
        """Those of *job_ids* that are done or failed."""
        if not job_ids:
            return set()
        query = select(_jobs.c.job_id).where(_jobs.c.job_id.in_(list(job_ids)), _jobs.c.state.in_(FINISHED))
        with _Reading(self.engine) as connection:
            return set(connection.execute(query).scalars())

    def prune(self, *, before: float) -> int:
        """Forget finished jobs that ended before *before*; return how many."""
        with write_transaction(self.engine) as connection:
            removed = connection.execute(
                delete(_jobs).where(_jobs.c.state.in_(FINISHED), _jobs.c.finished_at < before)
            ).rowcount
        return int(removed or 0)

    # -- in-process wake-ups ---------------------------------------------------------------------------
    @staticmethod
    def listen(event: threading.Event) -> None:
        """Set *event* whenever a job is enqueued in this process (other processes are found by polling)."""
        with _listeners_lock:
            _listeners.add(event)

    @staticmethod
    def unlisten(event: threading.Event) -> None:
        with _listeners_lock:
            _listeners.discard(event)

    # -- rules -----------------------------------------------------------------------------------------
    def _claimable(self, connection: Connection, now: float) -> builtins.list[Row[Any]]:
        """Running jobs whose holder can no longer be working on them, then the oldest queued job."""
        running = connection.execute(
            select(_jobs)
            .where(_jobs.c.state == "running")
            .order_by(_jobs.c.created_at, _jobs.c.job_id)
            .with_for_update(skip_locked=True)
        ).all()
        abandoned = [row for row in running if (row.lease_until or 0.0) < now or _holder_is_gone(row.lease_holder)]
        queued = connection.execute(
            select(_jobs)
            .where(_jobs.c.state == "queued", or_(_jobs.c.lease_until.is_(None), _jobs.c.lease_until <= now))
            .order_by(_jobs.c.created_at, _jobs.c.job_id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).all()
        return abandoned + list(queued)

    def _give_up(self, connection: Connection, row: Row[Any], now: float) -> None:
        if row.state == "queued" and row.error:
            error = f"gave up after {row.attempts} attempts; the last one failed: {row.error}"
        else:
            error = (
                f"gave up after {row.attempts} attempts: each time, the worker running this job stopped before it "
                "finished (killed, out of memory or restarted); check the workers' logs, then submit the job again"
            )
        connection.execute(
            update(_jobs)
            .where(_jobs.c.job_id == row.job_id)
            .values(state="failed", error=error, lease_holder=None, lease_until=None, finished_at=now, updated_at=now)
        )

    def _change(self, job_id: str, worker: str, **values: Any) -> None:
        held = (_jobs.c.job_id == job_id) & (_jobs.c.lease_holder == worker) & (_jobs.c.state == "running")
        with write_transaction(self.engine) as connection:
            changed = connection.execute(update(_jobs).where(held).values(**values)).rowcount
        if changed != 1:
            raise LeaseLost(
                f"job {job_id} is no longer held by {worker}: its lease ran out and another worker claimed it",
                job_id=job_id,
            )

    def _finish(self, job_id: str, worker: str, state: JobState, **values: Any) -> Job:
        now = time.time()
        self._change(job_id, worker, state=state, lease_until=None, finished_at=now, updated_at=now, **values)
        return self.get(job_id)


def _holder_is_gone(holder: str | None) -> bool:
    """Whether a lease holder (``host:pid:start/worker``) was a process on this host that has ended."""
    if holder is None:
        return True
    process = holder.split("/", 1)[0]
    return writer_is_gone(process, age_s=0.0, stale_after_s=float("inf"))


def _job(row: Any) -> Job:
    progress = row.get("progress") or {}
    report = row.get("report")
    return Job(
        job_id=row["job_id"],
        kind=row["kind"],
        collection=row["collection"],
        tenant=row["tenant"],
        owner=row["owner"],
        state=row["state"],
        files=progress.get("files", 0),
        done=progress.get("done", 0),
        current=None if row["state"] in FINISHED else progress.get("current"),
        attempts=row["attempts"] or 0,
        faults=progress.get("faults", 0),
        created_at=row["created_at"],
        finished_at=row.get("finished_at"),
        report=IngestReport.model_validate(report) if report is not None else None,
        error=row.get("error"),
    )
