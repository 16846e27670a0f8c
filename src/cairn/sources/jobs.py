"""Source syncs as durable jobs, and the scheduler that enqueues the scheduled ones.

A sync job (kind `SOURCE_SYNC`) names its source; any worker runs it (`run_sync_job`). A job
whose worker died is claimed again and runs again from the start: the sync is idempotent (see
`cairn.sources.sync`), so it resumes where the dead one was, at the cost of one listing.

`schedule_due` is called by workers; one of them at a time holds the catalog lease
``source-scheduler``, so N workers (or replicas) enqueue one sync per due source, not N. A due
source's job id is derived from the source and its due time, so even two schedulers racing past
an expired lease enqueue it once.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

from cairn.errors import CatalogError
from cairn.jobs.queue import ClaimedJob, queue_for
from cairn.models import FailedFile, IngestReport
from cairn.sources.sync import SyncProgress, SyncReport, run_sync

if TYPE_CHECKING:
    from collections.abc import Callable

    from cairn.core import Cairn

__all__ = ["SCHEDULER_LEASE", "SOURCE_SYNC", "as_ingest_report", "discard_sync", "run_sync_job", "schedule_due"]

SOURCE_SYNC = "source-sync"
SCHEDULER_LEASE = "source-scheduler"


def run_sync_job(cairn: Cairn, job: ClaimedJob, progress: Callable[[int, int, str | None], None]) -> IngestReport:
    """Run the job's sync; its report, in the jobs' terms (files = objects listed)."""

    def step(update: SyncProgress) -> None:
        if update.phase == "ingesting":
            progress(update.total, update.done, update.current)

    report = run_sync(
        cairn, str(job.payload["source"]), confirm_deletions=bool(job.payload.get("confirm_deletions")), progress=step
    )
    return as_ingest_report(report)


def discard_sync(cairn: Cairn, job: ClaimedJob) -> None:
    """Nothing is staged for a sync: its fetched files live in a folder it deletes itself."""


def as_ingest_report(report: SyncReport) -> IngestReport:
    """A sync's report as a job's: held-back deletions are listed among the failures, with what to do."""
    failed = list(report.failed)
    if report.held_back:
        failed.append(FailedFile(path=f"source:{report.source}", error=report.message or "deletions held back"))
    return IngestReport(
        collection=report.collection,
        files=report.listed,
        ingested=report.ingested,
        unchanged=report.unchanged,
        removed=report.removed,
        failed=failed,
        seconds={"total": report.seconds},
    )


def schedule_due(cairn: Cairn, holder: str, *, now: float | None = None) -> list[str]:
    """Enqueue a sync of every scheduled source that is due, if *holder* is (or becomes) the scheduler."""
    catalog = cairn.catalog
    if not catalog.hold_lease(SCHEDULER_LEASE, holder, ttl_s=120.0):
        return []
    now = time.time() if now is None else now
    queue = queue_for(catalog)
    enqueued: list[str] = []
    for source in catalog.due_sources(now):
        due = source.next_sync_at or now
        job_id = hashlib.sha256(f"{source.name}@{due:.3f}".encode()).hexdigest()[:16]
        try:
            queue.enqueue(
                SOURCE_SYNC, source.collection, source.tenant, "scheduler", {"source": source.name}, job_id=job_id
            )
        except CatalogError:
            continue  # enqueued already (the same due time), by this scheduler or a racing one
        catalog.record_sync(source.name, source.last_sync or {}, next_sync_at=now + (source.every_s or 0))
        enqueued.append(source.name)
    return enqueued
