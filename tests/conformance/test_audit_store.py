"""The audit log on every vault backend: a directory and S3 (SeaweedFS), plain and sealed.

Appends must chain, concurrent writers must never overwrite each other (this leans on each backend's
``put_if_absent``), and tampering through the store must be caught, whatever the store does to the bytes.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from cairn.audit import AuditLog, AuditRecord, canonical_json, record_hash
from cairn.vault import ObjectStore


def _fill(log: AuditLog, count: int) -> list[AuditRecord]:
    return [log.append(actor="key-1", action="search", collection="hr", documents=[f"doc-{i}"]) for i in range(count)]


def _key(seq: int) -> str:
    return f"audit/{seq:012d}.json"


def test_appends_chain_and_verify(store: ObjectStore) -> None:
    """Ten appends read back in order, linked, and verify clean with the head they report."""
    log = AuditLog(store)
    written = _fill(log, 10)
    assert list(log.records()) == written
    result = log.verify(expected_head=log.head())
    assert (result.ok, result.records, result.head_seq) == (True, 10, 10)


def test_a_record_is_never_overwritten_by_a_second_writer(store: ObjectStore) -> None:
    """A writer with a stale head loses put_if_absent, re-syncs, and appends after the other writer's record."""
    first, second = AuditLog(store), AuditLog(store)
    first.append(actor="a", action="ingest")
    second.append(actor="b", action="ingest")
    assert first.append(actor="a", action="ingest").seq == 3
    assert [r.actor for r in AuditLog(store).records()] == ["a", "b", "a"]


def test_concurrent_independent_writers_leave_no_gaps_or_forks(store: ObjectStore) -> None:
    """Four writers, each with its own AuditLog, racing on one store: seqs 1..20 once each, chain verifies."""
    barrier = threading.Barrier(4)

    def work(worker: int) -> list[int]:
        log = AuditLog(store)
        barrier.wait()
        return [log.append(actor=f"w{worker}", action="search").seq for _ in range(5)]

    with ThreadPoolExecutor(4) as pool:
        seqs = sorted(s for chunk in pool.map(work, range(4)) for s in chunk)
    assert seqs == list(range(1, 21))
    log = AuditLog(store)
    assert len({r.prev for r in log.records()}) == 20
    assert log.verify().ok


def test_a_rewritten_record_is_detected(store: ObjectStore) -> None:
    """Rewriting record 3 through the store (with the store's key, if sealed) is reported as modified at seq 3."""
    log = AuditLog(store)
    _fill(log, 5)
    raw = json.loads(store.get(_key(3)))
    store.put(_key(3), canonical_json({**raw, "documents": ["doc-forged"]}))
    problems = log.verify().problems
    assert len(problems) == 1
    assert problems[0].startswith("seq 3: modified")


def test_a_rewritten_record_with_a_fresh_hash_breaks_the_chain(store: ObjectStore) -> None:
    """Rewriting record 3 with a recomputed hash is reported at seq 4, whose link no longer holds."""
    log = AuditLog(store)
    _fill(log, 5)
    body = {k: v for k, v in json.loads(store.get(_key(3))).items() if k != "hash"}
    body["outcome"] = "denied"
    store.put(_key(3), canonical_json({**body, "hash": record_hash(body)}))
    problems = log.verify().problems
    assert len(problems) == 1
    assert problems[0].startswith("seq 4: broken link")


def test_deleted_records_are_detected(store: ObjectStore) -> None:
    """A deleted middle record is a gap; a deleted last record shows only against the head kept before."""
    log = AuditLog(store)
    _fill(log, 6)
    kept = log.head()
    store.delete(_key(3))
    store.delete(_key(6))
    problems = log.verify(expected_head=kept).problems
    assert problems[0].startswith("seq 3: missing")
    assert problems[1].startswith("seq 6: missing")
    assert "truncation" in problems[1]
    assert len(problems) == 2
