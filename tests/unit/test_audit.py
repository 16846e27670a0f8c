"""The hash-chained audit log on a local directory: appends chain, and every kind of tampering is caught."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from audit_writer import append_many
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.audit import GENESIS, AuditHead, AuditLog, AuditRecord, canonical_json, record_hash
from cairn.errors import IntegrityError, InvalidRequest, StorageError
from cairn.vault import LocalDirStore


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "vault"


@pytest.fixture
def log(root: Path) -> AuditLog:
    return AuditLog(LocalDirStore(root))


def _fill(log: AuditLog, count: int = 50) -> list[AuditRecord]:
    return [
        log.append(actor=f"key-{i % 3}", action="search", collection="hr", documents=[f"doc-{i}"]) for i in range(count)
    ]


def _file(root: Path, seq: int) -> Path:
    return root / "audit" / f"{seq:012d}.json"


def _forge(seq: int, prev: str, **changes: object) -> bytes:
    """A well-formed record with a correct hash for its own content (what an attacker can compute)."""
    body: dict[str, object] = {
        "seq": seq,
        "at": "2025-01-01T00:00:00.000000Z",
        "actor": "cli:mallory",
        "action": "search",
        "collection": None,
        "target": None,
        "documents": [],
        "outcome": "ok",
        "detail": None,
        "prev": prev,
        **changes,
    }
    return canonical_json({**body, "hash": record_hash(body)})


def test_a_chain_of_fifty_appends_verifies(log: AuditLog) -> None:
    """50 appends get seqs 1..50, each linked to the one before, and the log verifies clean."""
    written = _fill(log)
    assert [r.seq for r in written] == list(range(1, 51))
    assert written[0].prev == GENESIS
    assert all(b.prev == a.hash for a, b in itertools.pairwise(written))
    result = log.verify()
    assert (result.ok, result.records, result.problems) == (True, 50, [])
    assert (result.head_seq, result.head_hash) == (50, written[-1].hash)
    assert log.head() == AuditHead(50, written[-1].hash)


def test_records_are_stored_as_canonical_json_with_their_hash(log: AuditLog, root: Path) -> None:
    """The stored bytes are sorted-key, space-free JSON; hash is the SHA-256 of them without the hash field."""
    record = log.append(actor="cli:alice", action="ask", collection="hr", outcome="denied", detail="no grant")
    raw = _file(root, 1).read_bytes()
    assert raw == canonical_json(json.loads(raw))
    assert record.hash == record_hash(json.loads(raw))
    assert record.at.endswith("Z")


def test_records_stream_in_order_from_a_start(log: AuditLog) -> None:
    """records(start) yields the records from that seq on, in seq order, exactly as appended."""
    written = _fill(log, 12)
    assert list(log.records()) == written
    assert [r.seq for r in log.records(start=10)] == [10, 11, 12]


def test_an_empty_log_verifies_and_its_head_is_genesis(log: AuditLog) -> None:
    """No records: verify is ok with 0 records, and the head is (0, 64 zeros)."""
    assert log.verify().ok
    assert log.head() == AuditHead(0, GENESIS)


def test_an_edited_byte_is_detected_at_its_seq(log: AuditLog, root: Path) -> None:
    """Changing one byte of record 17's content reports seq 17 as modified, and nothing else."""
    _fill(log)
    path = _file(root, 17)
    path.write_bytes(path.read_bytes().replace(b"doc-16", b"doc-99"))
    result = log.verify()
    assert not result.ok
    assert result.problems == [result.problems[0]]
    assert result.problems[0].startswith("seq 17: modified")


def test_a_rewritten_record_with_a_recomputed_hash_breaks_the_next_link(log: AuditLog, root: Path) -> None:
    """Rewriting record 20 with a fresh hash passes its own check, but seq 21's prev no longer matches."""
    written = _fill(log)
    _file(root, 20).write_bytes(_forge(20, written[18].hash))
    problems = log.verify().problems
    assert len(problems) == 1
    assert problems[0].startswith("seq 21: broken link")


def test_a_deleted_middle_record_is_a_gap(log: AuditLog, root: Path) -> None:
    """Deleting record 25 reports seq 25 missing (and no spurious link error at 26)."""
    _fill(log)
    _file(root, 25).unlink()
    result = log.verify()
    assert result.records == 49
    assert len(result.problems) == 1
    assert result.problems[0].startswith("seq 25: missing")


def test_a_deleted_run_of_records_is_one_gap(log: AuditLog, root: Path) -> None:
    """Deleting records 1-3 reports one gap naming seq 1 to seq 3."""
    _fill(log, 10)
    for seq in (1, 2, 3):
        _file(root, seq).unlink()
    assert log.verify().problems == ["seq 1 to seq 3: missing — the log jumps from seq 0 to 4 (deleted)"]


def test_a_deleted_last_record_is_invisible_without_a_kept_head(log: AuditLog, root: Path) -> None:
    """Truncating the tail leaves a consistent chain: verify alone cannot tell (documented limit)."""
    _fill(log)
    _file(root, 50).unlink()
    assert log.verify().ok


def test_a_deleted_last_record_is_detected_against_the_kept_head(log: AuditLog, root: Path) -> None:
    """With the head noted before the deletion, verify reports seq 50 missing from the tail."""
    _fill(log)
    kept = log.head()
    _file(root, 50).unlink()
    result = log.verify(expected_head=kept)
    assert not result.ok
    assert len(result.problems) == 1
    assert result.problems[0].startswith("seq 50: missing")
    assert "truncation" in result.problems[0]
    assert log.verify(expected_head=(49, log.head().hash)).ok


def test_a_rewritten_tail_is_detected_against_the_kept_head(log: AuditLog, root: Path) -> None:
    """Replacing records 49-50 with a consistent forged chain passes verify, but not against the kept head."""
    written = _fill(log)
    kept = log.head()
    forged_49 = _forge(49, written[47].hash)
    _file(root, 49).write_bytes(forged_49)
    _file(root, 50).write_bytes(_forge(50, json.loads(forged_49)["hash"]))
    assert log.verify().ok
    problems = log.verify(expected_head=kept).problems
    assert len(problems) == 1
    assert problems[0].startswith("seq 50: hash")


def test_swapped_records_are_misplaced_and_unlinked(log: AuditLog, root: Path) -> None:
    """Swapping the files of records 10 and 30 reports both seqs as misplaced."""
    _fill(log)
    a, b = _file(root, 10), _file(root, 30)
    a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
    a.write_bytes(b_bytes)
    b.write_bytes(a_bytes)
    problems = log.verify().problems
    assert any(p.startswith("seq 10: misplaced") and "says seq 30" in p for p in problems)
    assert any(p.startswith("seq 30: misplaced") and "says seq 10" in p for p in problems)
    assert any(p.startswith("seq 10: broken link") for p in problems)


def test_a_forged_record_with_a_wrong_prev_is_a_broken_link(log: AuditLog, root: Path) -> None:
    """A record added after the head, self-consistent but not linked to seq 50, is reported at seq 51."""
    _fill(log)
    _file(root, 51).write_bytes(_forge(51, "ab" * 32))
    problems = log.verify().problems
    assert len(problems) == 1
    assert problems[0].startswith("seq 51: broken link")


def test_a_record_inserted_in_the_middle_is_detected(log: AuditLog, root: Path) -> None:
    """Shifting records 26-50 up by one and forging a new 26 breaks the chain at the insertion and after."""
    written = _fill(log)
    for seq in range(50, 25, -1):
        _file(root, seq).rename(_file(root, seq + 1))
    _file(root, 26).write_bytes(_forge(26, written[24].hash))
    problems = log.verify().problems
    assert problems[0].startswith("seq 27: misplaced")
    assert any(p.startswith("seq 27: broken link") for p in problems)


def test_an_unparsable_record_is_reported(log: AuditLog, root: Path) -> None:
    """A record that is not JSON, or JSON that is not a valid record, is reported as unparsable at its seq."""
    _fill(log, 5)
    _file(root, 2).write_bytes(b"\x00garbage")
    _file(root, 4).write_bytes(b'{"seq": 4}')
    problems = log.verify().problems
    assert [p.split(" —")[0] for p in problems] == ["seq 2: unparsable", "seq 4: unparsable"]


def test_a_stray_object_under_the_prefix_is_reported(log: AuditLog, root: Path) -> None:
    """An object under audit/ that is not a record key is named as a problem."""
    _fill(log, 3)
    (root / "audit" / "000000000002.json.bak").write_bytes(b"{}")
    problems = log.verify().problems
    assert problems == [
        "audit/000000000002.json.bak: not an audit record key (expected audit/NNNNNNNNNNNN.json, seq >= 1)"
    ]


def test_a_stale_writer_takes_the_next_free_seq_without_overwriting(root: Path) -> None:
    """Two log objects on one store: the one with an old cached head loses the race, re-syncs, and appends after."""
    first, second = AuditLog(LocalDirStore(root)), AuditLog(LocalDirStore(root))
    first.append(actor="a", action="ingest")
    second.append(actor="b", action="ingest")  # second caches head 2
    first.append(actor="a", action="ingest")  # first's cache says 1: loses seq 2, writes 3
    assert second.append(actor="b", action="ingest").seq == 4
    assert [r.actor for r in first.records()] == ["a", "b", "a", "b"]
    assert first.verify().ok


def test_append_gives_up_with_a_storage_error_after_bounded_attempts(root: Path) -> None:
    """A store where every conditional write loses makes append raise StorageError, not loop forever."""

    class AlwaysTaken(LocalDirStore):
        def put_if_absent(self, key: str, data: bytes) -> bool:
            return False

    log = AuditLog(AlwaysTaken(root), max_attempts=3)
    with pytest.raises(StorageError, match="lost the race"):
        log.append(actor="a", action="search")


def test_invalid_fields_and_prefixes_are_refused(root: Path) -> None:
    """A bad outcome is InvalidRequest before anything is written; so is a prefix without a trailing '/'."""
    log = AuditLog(LocalDirStore(root))
    with pytest.raises(InvalidRequest, match="outcome"):
        log.append(actor="a", action="search", outcome="maybe")  # type: ignore[arg-type]
    assert log.head().seq == 0
    with pytest.raises(InvalidRequest, match="prefix"):
        AuditLog(LocalDirStore(root), prefix="audit")


def test_reading_a_corrupt_record_raises_integrity_error(log: AuditLog, root: Path) -> None:
    """records() refuses a record it cannot parse, pointing at `cairn audit verify`."""
    _fill(log, 2)
    _file(root, 2).write_bytes(b"not json")
    with pytest.raises(IntegrityError, match="cairn audit verify"):
        list(log.records())


def test_a_kept_head_parses_from_its_text_form() -> None:
    """str(head) is SEQ:HASH, and AuditHead.parse reads it back; malformed text is InvalidRequest."""
    head = AuditHead(7, "ab" * 32)
    assert AuditHead.parse(str(head)) == head
    for bad in ("7", "x:" + "ab" * 32, "7:abc", "0:" + "ab" * 32):
        with pytest.raises(InvalidRequest):
            AuditHead.parse(bad)


@settings(max_examples=25, deadline=None)
@given(
    actor=st.text(min_size=1, max_size=40),
    detail=st.none() | st.text(max_size=200),
    documents=st.lists(st.text(max_size=30), max_size=5),
)
def test_any_text_round_trips_and_verifies(actor: str, detail: str | None, documents: list[str]) -> None:
    """Any Unicode in the fields (quotes, newlines, emoji, RTL): the record reads back equal and verifies."""
    with tempfile.TemporaryDirectory() as root:
        log = AuditLog(LocalDirStore(Path(root)))
        record = log.append(actor=actor, action="ask", detail=detail, documents=documents)
        assert list(log.records()) == [record]
        assert log.verify().ok


def test_text_that_is_not_unicode_is_refused(log: AuditLog) -> None:
    """A lone surrogate cannot be encoded as UTF-8: append refuses it with InvalidRequest and writes nothing."""
    with pytest.raises(InvalidRequest, match=r"actor: .*unicode"):
        log.append(actor="cli:\ud800", action="search")
    assert log.head().seq == 0


def test_eight_threads_append_a_gap_free_chain(log: AuditLog) -> None:
    """8 threads sharing one log append 200 records: seqs 1..200, each used once, chain verifies."""
    barrier = threading.Barrier(8)

    def work(worker: int) -> list[int]:
        barrier.wait()
        return [log.append(actor=f"t{worker}", action="search").seq for _ in range(25)]

    with ThreadPoolExecutor(8) as pool:
        seqs = [s for chunk in pool.map(work, range(8)) for s in chunk]
    assert sorted(seqs) == list(range(1, 201))
    assert log.verify().ok


def test_eight_independent_writers_race_without_gaps_or_forks(root: Path) -> None:
    """8 threads each with its own AuditLog (like 8 processes) race on put_if_absent: no gaps, no forks."""
    barrier = threading.Barrier(8)

    def work(worker: int) -> list[int]:
        log = AuditLog(LocalDirStore(root))
        barrier.wait()
        return [log.append(actor=f"w{worker}", action="search").seq for _ in range(15)]

    with ThreadPoolExecutor(8) as pool:
        seqs = [s for chunk in pool.map(work, range(8)) for s in chunk]
    log = AuditLog(LocalDirStore(root))
    records = list(log.records())
    assert sorted(seqs) == [r.seq for r in records] == list(range(1, 121))
    assert len({r.prev for r in records}) == 120
    assert log.verify().ok


def test_two_processes_interleave_without_gaps_or_forks(root: Path) -> None:
    """Two spawned processes appending at once share one chain: every seq once, every prev distinct, verified."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(2) as pool:
        start = manager.Barrier(2)  # both children are up before either appends
        pending = [pool.apply_async(append_many, (str(root), f"p{i}", 100, start)) for i in range(2)]
        seqs = [s for p in pending for s in p.get(timeout=60)]
    log = AuditLog(LocalDirStore(root))
    records = list(log.records())
    assert sorted(seqs) == [r.seq for r in records] == list(range(1, 201))
    assert len({r.prev for r in records}) == 200
    writers = [r.actor for r in records]
    assert writers.count("p0") == writers.count("p1") == 100
    assert sum(a != b for a, b in itertools.pairwise(writers)) > 1  # they really interleaved
    assert log.verify().ok
