"""The worker: claims jobs from the catalog and runs them, renewing its lease while it works.

`cairn worker` runs one in a process of its own; `cairn serve` runs one in a thread beside the API
unless told not to (``--no-worker``). Any number of workers, in any number of processes and
machines, share one queue (`cairn.jobs.queue`): each job is held by one worker at a time.

While a job runs, a heartbeat thread renews its lease every third of the lease. A worker that is
killed stops renewing: its job is claimed again once the lease runs out, or at once by a worker on
the same host, which sees that the holder's process is gone. The job then runs again from the
start; the kinds of job here are idempotent (an upload's ingest skips what is already committed,
by content hash), so the job is done exactly once: no document lost, no version doubled.

A job that meets a passing fault (the vault, the engine or the catalog unreachable, a full disk) goes
back to the queue and is tried again after a pause that doubles from `retry_s` up to `retry_max_s`,
at most `max_faults` times: the job pauses through an outage and resumes by itself once the
component is back, and fails, saying why, only when the outage outlasts all its tries (about seven
minutes at the defaults). Any other error fails the job at once, with the error for its owner to read.

`stop` (SIGTERM or Ctrl-C for `cairn worker`) ends the loop once the current job has ended; a
second signal ends the process at once, and the job is re-run elsewhere.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cairn.catalog.writers import this_process
from cairn.errors import CairnError, CatalogError, EngineError, LeaseLost, StorageError
from cairn.jobs.queue import ClaimedJob, JobQueue, queue_for
from cairn.jobs.uploads import UPLOAD, Progress, discard_upload, run_upload, sweep_staging
from cairn.models import IngestReport
from cairn.sources.jobs import SOURCE_SYNC, discard_sync, run_sync_job, schedule_due

if TYPE_CHECKING:
    from cairn.core import Cairn

__all__ = ["KINDS", "JobKind", "Worker"]

log = logging.getLogger("cairn.jobs")

# Faults that pass: the job is worth trying again later, on this worker or another.
_PASSING_FAULTS = (StorageError, EngineError, CatalogError)
# Progress is written at most this often (and always for the last file): readers poll every 0.5 s.
_PROGRESS_EVERY_S = 0.5


@dataclass(frozen=True)
class JobKind:
    """How to run one kind of job, and what to delete once it has ended (done or failed)."""

    run: Callable[[Cairn, ClaimedJob, Progress], IngestReport]
    cleanup: Callable[[Cairn, ClaimedJob], None]


KINDS: dict[str, JobKind] = {
    UPLOAD: JobKind(run=run_upload, cleanup=discard_upload),
    SOURCE_SYNC: JobKind(run=run_sync_job, cleanup=discard_sync),
}


# How often a worker checks for scheduled source syncs that are due.
SCHEDULE_S = 30.0
# How often a worker does its background upkeep (see `Worker._housekeeping`).
HOUSEKEEPING_S = 300.0


class Worker:
    """Claims and runs jobs for *cairn* until stopped; one job at a time."""

    def __init__(
        self,
        cairn: Cairn,
        queue: JobQueue | None = None,
        *,
        lease_s: float = 30.0,
        poll_s: float = 1.0,
        retry_s: float | None = None,
        retry_max_s: float | None = None,
        max_faults: int | None = None,
        name: str | None = None,
    ) -> None:
        settings = cairn.settings
        retry_s = settings.job_retry_s if retry_s is None else retry_s
        retry_max_s = settings.job_retry_max_s if retry_max_s is None else retry_max_s
        max_faults = settings.job_max_faults if max_faults is None else max_faults
        if lease_s <= 0 or poll_s <= 0 or retry_s < 0 or retry_max_s < 0 or max_faults < 0:
            raise ValueError(
                f"lease ({lease_s} s), poll ({poll_s} s), retry ({retry_s}, at most {retry_max_s} s) and the "
                f"number of tries after outages ({max_faults}) must be positive"
            )
        self.cairn = cairn
        self._queue = queue
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.retry_s = retry_s
        self.retry_max_s = retry_max_s
        self.max_faults = max_faults
        # host:pid:start names the process (see `cairn.catalog.writers`); the suffix tells its workers apart.
        self.name = name or f"{this_process()}/{secrets.token_hex(4)}"
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_housekeeping = 0.0
        self._next_schedule = 0.0

    @property
    def queue(self) -> JobQueue:
        """The queue in *cairn*'s catalog, opened on first use (in the worker's thread, not its creator's)."""
        if self._queue is None:
            self._queue = queue_for(self.cairn.catalog)
        return self._queue

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # -- the loop ----------------------------------------------------------------------------------
    def run(self, *, until_idle: bool = False) -> int:
        """Run jobs until `stop` (or, with *until_idle*, until none is waiting); return how many ran."""
        ran = 0
        JobQueue.listen(self._wake)
        try:
            self._housekeeping()
            while not self._stopping.is_set():
                if time.monotonic() >= self._next_housekeeping:
                    self._housekeeping()
                self._schedule_sources()
                self._wake.clear()
                job = self._claim(until_idle)
                if job is None:
                    if until_idle:
                        break
                    self._wake.wait(self.poll_s)
                    continue
                self.run_one(job)
                ran += 1
        finally:
            JobQueue.unlisten(self._wake)
        return ran

    def start(self) -> threading.Thread:
        """Run the loop in a daemon thread (the service's embedded worker)."""
        self._thread = threading.Thread(target=self._run_logged, name="cairn-worker", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = None) -> None:
        """End the loop once the current job has ended; with *timeout*, wait that long for the thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run_logged(self) -> None:
        try:
            self.run()
        except Exception:
            log.exception("the worker %s stopped on an unexpected error", self.name)

    def _claim(self, until_idle: bool) -> ClaimedJob | None:
        try:
            return self.queue.claim(self.name, self.lease_s)
        except Exception as exc:  # the catalog may be unreachable for a while: the worker waits it out
            if until_idle:
                raise
            log.warning("could not claim a job (%s); trying again in %g s", exc, self.poll_s)
            return None

    def _housekeeping(self) -> None:
        """Background upkeep any worker may do, every `HOUSEKEEPING_S`: staged uploads of ended jobs, finished
        jobs past `jobs_keep_days`, and index rows retired past their grace in every collection (a CLI ingest
        that exits leaves its last batch's replaced rows to be deleted later)."""
        self._next_housekeeping = time.monotonic() + HOUSEKEEPING_S
        self._sweep()
        try:
            keep_s = self.cairn.settings.jobs_keep_days * 86_400
            if pruned := self.queue.prune(before=time.time() - keep_s):
                log.info("forgot %d finished jobs older than %d days", pruned, self.cairn.settings.jobs_keep_days)
            janitor = self.cairn.janitor
            for name in self.cairn.catalog.collection_names():
                if (state := self.cairn.catalog.collection(name)) is not None:
                    janitor.sweep(state)
        except Exception as exc:  # upkeep waits for the next round; jobs go on
            log.warning("housekeeping did not finish: %s", exc)

    def _schedule_sources(self) -> None:
        """Enqueue due source syncs, at most every `SCHEDULE_S`, when this worker is the deployment's scheduler."""
        if time.monotonic() < self._next_schedule:
            return
        self._next_schedule = time.monotonic() + SCHEDULE_S
        try:
            schedule_due(self.cairn, self.name)
        except Exception as exc:  # the next round tries again
            log.warning("could not schedule source syncs: %s", exc)

    def _sweep(self) -> None:
        try:
            if swept := sweep_staging(self.cairn, self.queue):
                log.info("deleted %d staged upload objects of jobs that had ended", swept)
        except Exception as exc:
            log.warning("could not sweep staged uploads: %s", exc)

    # -- one job ------------------------------------------------------------------------------------
    def run_one(self, job: ClaimedJob) -> None:
        """Run a claimed job and record how it ended; its staged inputs are deleted once it has ended."""
        kind = KINDS.get(job.kind)
        outcome = self._attempt(job, kind)
        if self._record(job, outcome) and kind is not None:
            kind.cleanup(self.cairn, job)

    def _attempt(self, job: ClaimedJob, kind: JobKind | None) -> _Outcome:
        heartbeat = _Heartbeat(self.queue, job.job_id, self.name, self.lease_s)
        try:
            if kind is None:
                raise CairnError(f"this worker cannot run jobs of kind {job.kind!r} (it runs {', '.join(KINDS)})")
            return _Outcome(report=kind.run(self.cairn, job, self._progress(job, heartbeat)))
        except _PASSING_FAULTS as exc:
            return _Outcome(error=str(exc), passing=True)
        except CairnError as exc:
            return _Outcome(error=str(exc))
        except Exception as exc:  # the job fails; the worker goes on (details in this log, not in the job)
            log.exception("job %s failed", job.job_id)
            return _Outcome(error=f"internal error ({type(exc).__name__})")
        finally:
            heartbeat.stop()

    def _record(self, job: ClaimedJob, outcome: _Outcome) -> bool:
        """Record the outcome; whether the job has ended (and so its inputs may go)."""
        try:
            if outcome.report is not None:
                self.queue.complete(job.job_id, self.name, outcome.report)
            elif outcome.passing and job.faults < self.max_faults:
                pause = self.pause_after(job.faults + 1)
                log.warning("job %s met a passing fault (%s); trying again in %g s", job.job_id, outcome.error, pause)
                message = f"{outcome.error} (paused; try {job.faults + 2} in {pause:g} s)"
                self.queue.retry(job.job_id, self.name, message, after_s=pause)
                return False
            elif outcome.passing:
                error = f"gave up after {job.faults + 1} tries, each of which met an outage; the last: {outcome.error}"
                self.queue.fail(job.job_id, self.name, error)
            else:
                self.queue.fail(job.job_id, self.name, outcome.error or "the job ended without a report")
        except LeaseLost as exc:
            log.warning("%s; its outcome is left to that worker", exc)
            return False
        except CairnError as exc:
            log.error("could not record the end of job %s (%s); it runs again once its lease expires", job.job_id, exc)
            return False
        return True

    def pause_after(self, faults: int) -> float:
        """The wait before the next try of a job that has met *faults* outages: doubling, bounded."""
        return float(min(self.retry_max_s, self.retry_s * 2 ** (faults - 1)))

    def _progress(self, job: ClaimedJob, heartbeat: _Heartbeat) -> Progress:
        last = 0.0

        def report(files: int, done: int, current: str | None) -> None:
            nonlocal last
            now = time.monotonic()
            if heartbeat.lost or (done < files and now - last < _PROGRESS_EVERY_S):
                return
            last = now
            try:
                self.queue.progress(job.job_id, self.name, files, done, current, faults=job.faults)
            except LeaseLost as exc:
                heartbeat.lost = True
                log.warning("%s; finishing the run, whose outcome will not be recorded", exc)
            except CairnError as exc:
                log.warning("could not record the progress of job %s: %s", job.job_id, exc)

        return report


@dataclass(frozen=True)
class _Outcome:
    """How one run of a job ended: a report, or an error (*passing*: worth trying again later)."""

    report: IngestReport | None = None
    error: str | None = None
    passing: bool = False


class _Heartbeat:
    """Renews a job's lease every third of the lease until stopped, or until the lease is found lost."""

    def __init__(self, queue: JobQueue, job_id: str, worker: str, lease_s: float) -> None:
        self.lost = False
        self._queue = queue
        self._job_id = job_id
        self._worker = worker
        self._lease_s = lease_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"cairn-heartbeat-{job_id}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stopped.wait(self._lease_s / 3):
            try:
                self._queue.heartbeat(self._job_id, self._worker, self._lease_s)
            except LeaseLost as exc:
                self.lost = True
                log.warning("%s", exc)
                return
            except CairnError as exc:  # the catalog may be back before the lease runs out
                log.warning("could not renew the lease on job %s: %s", self._job_id, exc)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
