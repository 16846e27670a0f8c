"""Durable jobs: uploads (and, later, source syncs) recorded in the catalog and run by workers.

`JobQueue` keeps jobs in the catalog's database and hands them to workers under a lease;
`Worker` claims and runs them (`cairn worker`, or the thread `cairn serve` runs); `uploads`
stages an upload's files in the vault before its job is recorded, and ingests them in a worker.
"""

from __future__ import annotations

from cairn.jobs.queue import MAX_ATTEMPTS, ClaimedJob, Job, JobQueue, JobState, queue_for
from cairn.jobs.worker import Worker

__all__ = ["MAX_ATTEMPTS", "ClaimedJob", "Job", "JobQueue", "JobState", "Worker", "queue_for"]
