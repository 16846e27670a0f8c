"""The durable job queue on the catalog, on SQLite and PostgreSQL: claiming, leases, outcomes, give-ups.

Claims race in real processes (two of them, against one database), and a holder that died is a
real process that exited: the queue tells live holders from dead ones by their process, not by a flag.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.catalog import SqlCatalog
from cairn.errors import LeaseLost, NotFound
from cairn.jobs import JobQueue
from cairn.models import FailedFile, IngestReport

pytestmark = pytest.mark.integration

# Holders on another host: only their lease tells whether they still work (their process cannot be checked).
ELSEWHERE_A = "elsewhere:101:5/a"
ELSEWHERE_B = "elsewhere:102:5/b"


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("fresh_postgres_url"))
    return f"sqlite:///{tmp_path / 'catalog.db'}"


@pytest.fixture
def queue(catalog_url: str) -> Iterator[JobQueue]:
    catalog = SqlCatalog(catalog_url)
    yield JobQueue(catalog.engine)
    catalog.close()


def _enqueue(queue: JobQueue, n: int = 0, *, tenant: str = "acme") -> str:
    return queue.enqueue("upload", "kb", tenant, "key1", {"files": [{"name": f"f{n}.txt"}]}).job_id


def test_a_job_goes_from_queued_to_running_to_done(queue: JobQueue) -> None:
    """An enqueued job is queued; a claim holds it (running, one attempt, its payload); heartbeats extend the
    lease, progress is recorded, and completion stores the report; then nothing is left to claim."""
    job_id = _enqueue(queue)
    assert (queue.get(job_id).state, queue.get(job_id).attempts) == ("queued", 0)

    claimed = queue.claim(ELSEWHERE_A, lease_s=30)
    assert claimed is not None
    assert (claimed.job_id, claimed.state, claimed.attempts) == (job_id, "running", 1)
    assert claimed.payload == {"files": [{"name": "f0.txt"}]}
    assert queue.claim(ELSEWHERE_B, lease_s=30) is None  # held: nobody else gets it

    first_lease = claimed.lease_until
    time.sleep(0.05)
    queue.heartbeat(job_id, ELSEWHERE_A, lease_s=30)
    queue.progress(job_id, ELSEWHERE_A, files=2, done=1, current="f0.txt")
    seen = queue.get(job_id)
    assert (seen.files, seen.done, seen.current) == (2, 1, "f0.txt")
    with queue.engine.connect() as connection:
        lease_until = connection.exec_driver_sql(f"SELECT lease_until FROM jobs WHERE job_id = '{job_id}'").scalar()
    assert lease_until > first_lease

    done = queue.complete(job_id, ELSEWHERE_A, IngestReport(collection="kb", files=2, ingested=2))
    assert (done.state, done.current, done.report.ingested if done.report else None) == ("done", None, 2)
    assert done.finished_at is not None
    assert done.finished
    assert queue.claim(ELSEWHERE_B, lease_s=30) is None
    with pytest.raises(LeaseLost):
        queue.heartbeat(job_id, ELSEWHERE_A, lease_s=30)  # an ended job has no lease to renew


def test_failing_records_the_error_and_listings_are_per_tenant(queue: JobQueue) -> None:
    """A failed job keeps its error; `list` shows one tenant's jobs (the newest *limit*, oldest first) and `get`
    of an unknown id is NotFound."""
    ids = [_enqueue(queue, n) for n in range(3)]
    other = _enqueue(queue, 9, tenant="globex")
    claimed = queue.claim(ELSEWHERE_A, lease_s=30)
    assert claimed is not None
    assert claimed.job_id == ids[0]
    failed = queue.fail(ids[0], ELSEWHERE_A, "the key was revoked")
    assert (failed.state, failed.error) == ("failed", "the key was revoked")
    assert [j.job_id for j in queue.list("acme")] == ids
    assert [j.job_id for j in queue.list("acme", limit=2)] == ids[1:]
    assert [j.job_id for j in queue.list("globex")] == [other]
    assert len(queue.list()) == 4
    with pytest.raises(NotFound):
        queue.get("0000000000000000")


_CLAIMER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from cairn.catalog.engine import catalog_engine
    from cairn.catalog.writers import this_process
    from cairn.jobs import JobQueue
    from cairn.models import IngestReport

    url, label, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    queue = JobQueue(catalog_engine(url))
    worker = f"{this_process()}/{label}"
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.01)
    while (job := queue.claim(worker, lease_s=60)) is not None:
        print(job.job_id, flush=True)
        time.sleep(0.02)  # a little work, so the two claimers interleave
        queue.complete(job.job_id, worker, IngestReport(collection=job.collection))
    """
)


def test_two_claimer_processes_never_get_the_same_job(queue: JobQueue, catalog_url: str, tmp_path: Path) -> None:
    """Two processes claiming from one database at once, 40 jobs: each job is claimed exactly once, both
    processes get work, and every job ends done."""
    ids = {_enqueue(queue, n) for n in range(40)}
    script = tmp_path / "claimer.py"
    script.write_text(_CLAIMER)
    go = tmp_path / "go"
    claimers = [
        subprocess.Popen(
            [sys.executable, str(script), catalog_url, f"c{i}", str(go)], stdout=subprocess.PIPE, text=True
        )
        for i in range(2)
    ]
    for claimer in claimers:
        assert claimer.stdout is not None
        assert claimer.stdout.readline().strip() == "ready"
    go.touch()
    outputs = [claimer.communicate(timeout=120)[0].split() for claimer in claimers]
    assert [claimer.returncode for claimer in claimers] == [0, 0], outputs
    counted = Counter(job_id for output in outputs for job_id in output)
    assert set(counted) == ids
    assert set(counted.values()) == {1}, [job_id for job_id, n in counted.items() if n > 1]
    assert all(outputs), f"one claimer got no job: {[len(o) for o in outputs]}"
    assert {job.state for job in queue.list(limit=100)} == {"done"}


def test_an_expired_lease_is_claimed_again_and_the_old_holder_is_refused(queue: JobQueue) -> None:
    """A holder that stops renewing loses the job when its lease runs out: another worker claims it (second
    attempt), and the first holder's heartbeat, progress and completion are refused with LeaseLost."""
    job_id = _enqueue(queue)
    assert queue.claim(ELSEWHERE_A, lease_s=0.3) is not None
    assert queue.claim(ELSEWHERE_B, lease_s=30) is None  # still within the lease
    time.sleep(0.4)
    again = queue.claim(ELSEWHERE_B, lease_s=30)
    assert again is not None
    assert (again.job_id, again.attempts, again.worker) == (job_id, 2, ELSEWHERE_B)
    report = IngestReport(collection="kb")
    for stale in (
        lambda: queue.heartbeat(job_id, ELSEWHERE_A, lease_s=30),
        lambda: queue.progress(job_id, ELSEWHERE_A, 1, 1, None),
        lambda: queue.complete(job_id, ELSEWHERE_A, report),
        lambda: queue.fail(job_id, ELSEWHERE_A, "late"),
    ):
        with pytest.raises(LeaseLost):
            stale()
    assert queue.complete(job_id, ELSEWHERE_B, report).state == "done"


_HOLDER = textwrap.dedent(
    """
    import sys
    from cairn.catalog.engine import catalog_engine
    from cairn.catalog.writers import this_process
    from cairn.jobs import JobQueue

    job = JobQueue(catalog_engine(sys.argv[1])).claim(f"{this_process()}/dies", lease_s=3600)
    print(job.job_id if job else "none", flush=True)
    """
)


def test_a_job_held_by_a_process_of_this_host_that_died_is_claimed_at_once(queue: JobQueue, catalog_url: str) -> None:
    """A process on this host claims a job with an hour's lease and exits without finishing it: the job is
    claimed again at once (its holder is gone), not an hour later."""
    job_id = _enqueue(queue)
    holder = subprocess.run([sys.executable, "-c", _HOLDER, catalog_url], capture_output=True, text=True, timeout=120)
    assert holder.stdout.strip() == job_id, holder.stderr
    again = queue.claim(ELSEWHERE_B, lease_s=30)
    assert again is not None
    assert (again.job_id, again.attempts) == (job_id, 2)


def test_a_job_whose_workers_keep_dying_ends_failed_after_max_attempts(catalog_url: str) -> None:
    """Each of three claims lets the lease lapse (the worker died); the next claim does not run the job a fourth
    time but ends it failed with an error that says why, and a later job is still handed out."""
    catalog = SqlCatalog(catalog_url)
    try:
        queue = JobQueue(catalog.engine, max_attempts=3)
        job_id = _enqueue(queue)
        for attempt in (1, 2, 3):
            claimed = queue.claim(ELSEWHERE_A, lease_s=0.05)
            assert claimed is not None
            assert claimed.attempts == attempt
            time.sleep(0.1)
        later = _enqueue(queue, 1)
        next_job = queue.claim(ELSEWHERE_B, lease_s=30)
        assert next_job is not None
        assert next_job.job_id == later
        given_up = queue.get(job_id)
        assert (given_up.state, given_up.attempts) == ("failed", 3)
        assert given_up.error is not None
        assert "gave up after 3 attempts" in given_up.error
    finally:
        catalog.close()


def test_a_job_view_hides_an_ended_jobs_current_file(queue: JobQueue) -> None:
    """The view of an ended job has no ``current`` file, even when its last progress named one."""
    job_id = _enqueue(queue)
    assert queue.claim(ELSEWHERE_A, lease_s=30) is not None
    queue.progress(job_id, ELSEWHERE_A, 1, 1, "f0.txt")
    failed_file = FailedFile(path="f0.txt", error="no text")
    ended = queue.complete(job_id, ELSEWHERE_A, IngestReport(collection="kb", failed=[failed_file]))
    assert (ended.current, ended.done, ended.files) == (None, 1, 1)


def test_a_retried_job_waits_its_pause_then_runs_again_and_keeps_its_last_error_until_done(queue: JobQueue) -> None:
    """A job put back after a passing fault is queued with the fault as its error, not claimed before its pause
    ends, then claimed again with its claim given back (a fault is no attempt) and one fault counted; completing it
    clears the error."""
    job_id = _enqueue(queue)
    assert queue.claim(ELSEWHERE_A, lease_s=30) is not None
    retried = queue.retry(job_id, ELSEWHERE_A, "the vault did not answer (trying again)", after_s=0.3)
    assert (retried.state, retried.error) == ("queued", "the vault did not answer (trying again)")
    assert queue.claim(ELSEWHERE_B, lease_s=30) is None
    time.sleep(0.35)
    again = queue.claim(ELSEWHERE_B, lease_s=30)
    assert again is not None
    assert (again.job_id, again.attempts, again.faults) == (job_id, 1, 1)
    done = queue.complete(job_id, ELSEWHERE_B, IngestReport(collection="kb"))
    assert (done.state, done.error) == ("done", None)


def test_faults_do_not_use_up_the_attempts_kept_for_dying_workers(catalog_url: str) -> None:
    """With max_attempts 1, a job put back after faults is still claimed again (an outage is no sign the job kills
    workers): each retry counts a fault, progress keeps the count, and a worker that then dies uses the attempt."""
    catalog = SqlCatalog(catalog_url)
    try:
        queue = JobQueue(catalog.engine, max_attempts=1)
        job_id = _enqueue(queue)
        for fault in (1, 2):
            claimed = queue.claim(ELSEWHERE_A, lease_s=30)
            assert claimed is not None
            assert (claimed.attempts, claimed.faults) == (1, fault - 1)
            queue.progress(job_id, ELSEWHERE_A, 2, 1, "f0.txt", faults=claimed.faults)
            queue.retry(job_id, ELSEWHERE_A, "the engine did not answer", after_s=0)
        assert queue.get(job_id).faults == 2
        claimed = queue.claim(ELSEWHERE_B, lease_s=0.01)  # then this holder dies: its lease runs out
        assert claimed is not None
        time.sleep(0.05)
        assert queue.claim(ELSEWHERE_A, lease_s=30) is None
        given_up = queue.get(job_id)
        assert (given_up.state, given_up.faults) == ("failed", 2)
        assert given_up.error is not None
        assert given_up.error.startswith("gave up after 1 attempts")
    finally:
        catalog.close()


def test_finished_jobs_are_pruned_after_their_keep_time(queue: JobQueue) -> None:
    """prune() forgets finished jobs that ended before the cut-off, and keeps queued ones and any that ended after."""
    first, second, waiting = _enqueue(queue, 1), _enqueue(queue, 2), _enqueue(queue, 3)
    for expected in (first, second):
        claimed = queue.claim(ELSEWHERE_A, lease_s=30)
        assert claimed is not None
        assert claimed.job_id == expected
        queue.complete(claimed.job_id, ELSEWHERE_A, IngestReport(collection="kb"))
    cut = time.time() + 1  # everything finished so far counts as old ...
    assert queue.prune(before=cut - 3600) == 0  # ... but nothing ended an hour ago
    assert queue.prune(before=cut) == 2
    assert [j.job_id for j in queue.list()] == [waiting]
    with pytest.raises(NotFound):
        queue.get(first)
