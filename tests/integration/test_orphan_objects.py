"""No orphan objects: what uploads stage and what killed writers leave in the vault is found and removed.

- `sweep_staging` (a worker's housekeeping) deletes the staged objects and working copies of ended jobs, and
  those of requests that died before their job was recorded once they are older than the grace;
- `verify` reports vault objects no catalog version references (original bytes, chunk files, version
  records), `--repair` deletes them, except what retention keeps; young objects (a running writer's) are
  never orphans. On a local vault and on SeaweedFS S3; with a planted orphan and a real writer killed mid-ingest.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cairn import Cairn, Settings
from cairn.jobs import queue_for
from cairn.jobs.uploads import STAGING_GRACE_S, IncomingFile, submit_upload, sweep_staging
from cairn.stack.seaweed import SeaweedS3
from cairn.vault.store import sha256_hex

pytestmark = pytest.mark.integration

HARNESS = Path(__file__).with_name("ack_ingest.py")


def _s3_env(seaweed: SeaweedS3) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": seaweed.endpoint_url,
        "AWS_ACCESS_KEY_ID": seaweed.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
        "AWS_REGION": seaweed.region,
    }


@pytest.fixture(params=["local", "s3"])
def vault_settings(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Settings for a Cairn whose vault is a local directory, or a fresh bucket on SeaweedFS."""
    if request.param == "local":
        yield Settings(home=tmp_path / "home")
        return
    seaweed: SeaweedS3 = request.getfixturevalue("seaweed")
    bucket: str = request.getfixturevalue("seaweed_bucket")
    for name, value in _s3_env(seaweed).items():
        monkeypatch.setenv(name, value)
    yield Settings(home=tmp_path / "home", store=f"s3://{bucket}/vault", s3_addressing_style="path")


def _stage(cairn: Cairn, *names: str) -> str:
    job = submit_upload(
        cairn,
        queue_for(cairn.catalog),
        [IncomingFile(name, io.BytesIO(f"The {name} note.\n".encode())) for name in names],
        collection="default",
        tenant=None,
        allow=["*"],
        principal=None,
        max_bytes=1 << 20,
    )
    return job.job_id


def _staged(cairn: Cairn) -> list[str]:
    return list(cairn.vault.store.list("uploads/"))


# -- uploads -------------------------------------------------------------------------------------------------
def test_staged_objects_and_working_copies_of_ended_jobs_go_and_those_of_queued_jobs_stay(
    vault_settings: Settings,
) -> None:
    """A job that failed (its worker died after ending it) loses its staged objects and this host's working
    copy at the next sweep; a queued job keeps both, however old (it has yet to run)."""
    with Cairn(vault_settings) as cairn:
        queue = queue_for(cairn.catalog)
        ended = _stage(cairn, "a.txt", "b.txt")
        claimed = queue.claim("test-worker", 60)
        assert claimed is not None
        assert claimed.job_id == ended
        queue.fail(ended, "test-worker", "the worker gave up")
        waiting = _stage(cairn, "c.txt")
        jobs = cairn.settings.home / "jobs"
        for job in (ended, waiting):
            (jobs / f"{job}-copy" / "0").mkdir(parents=True)
            (jobs / f"{job}-copy" / "0" / "a.txt").write_text("a working copy")

        assert sweep_staging(cairn, queue, grace_s=0) == 2
        assert _staged(cairn) == [f"uploads/{waiting}/0"]
        assert sorted(path.name for path in jobs.iterdir()) == [f"{waiting}-copy"]


def test_staged_objects_of_a_request_that_died_before_recording_its_job_are_swept_after_the_grace(
    vault_settings: Settings,
) -> None:
    """Objects under uploads/<job>/ with no job row (the request died between staging and enqueueing) stay
    while younger than the grace (that request may still be staging) and are deleted once older."""
    with Cairn(vault_settings) as cairn:
        queue = queue_for(cairn.catalog)
        cairn.vault.store.put("uploads/0123456789abcdef/0", b"staged by a request that died")
        cairn.vault.store.put("uploads/0123456789abcdef/1", b"staged by a request that died")
        assert sweep_staging(cairn, queue) == 0  # the default grace: an hour
        assert len(_staged(cairn)) == 2
        time.sleep(1.1)  # S3 keeps write times in whole seconds
        assert sweep_staging(cairn, queue, grace_s=0.5) == 2
        assert _staged(cairn) == []


def test_an_abandoned_working_copy_older_than_the_grace_is_removed_and_a_young_one_kept(tmp_path: Path) -> None:
    """A working copy under CAIRN_HOME/jobs whose job is unknown (a worker killed mid-job, the job since
    forgotten) is removed once older than the grace; one just made (its request may be recording it) stays."""
    with Cairn(Settings(home=tmp_path / "home")) as cairn:
        jobs = cairn.settings.home / "jobs"
        old, young = jobs / "aaaaaaaaaaaaaaaa-x1", jobs / "bbbbbbbbbbbbbbbb-x2"
        for folder in (old, young):
            folder.mkdir(parents=True)
            (folder / "doc.txt").write_text("a copy")
        past = time.time() - STAGING_GRACE_S - 60
        os.utime(old, (past, past))
        sweep_staging(cairn, queue_for(cairn.catalog))
        assert not old.exists()
        assert young.exists()


# -- verify: orphan objects ------------------------------------------------------------------------------------
def _plant_orphans(cairn: Cairn) -> dict[str, str]:
    """A blob, a chunk file and a version record no catalog version references, as a killed writer leaves them."""
    data = b"Bytes a writer stored before it was killed.\n"
    digest = sha256_hex(data)
    live = next(iter(cairn.catalog.iter_live_documents("default")))
    version = live.live_version()
    assert version is not None
    chunk_file = cairn.vault.store.get(version.chunks_key)
    planted = {
        "blob": f"blobs/{digest[:2]}/{digest}",
        "chunks": "collections/default/docs/ffffffffffffffff/v000001.parquet",
        "version_record": "collections/default/docs/ffffffffffffffff/v000001.json",
    }
    cairn.vault.store.put(planted["blob"], data)
    cairn.vault.store.put(planted["chunks"], chunk_file)
    cairn.vault.store.put(planted["version_record"], b'{"doc_id": "ffffffffffffffff", "version": 1}')
    return planted


def test_verify_reports_orphan_objects_and_repair_deletes_them_but_nothing_a_version_uses(
    vault_settings: Settings, docs: Path, embedder
) -> None:  # type: ignore[no-untyped-def]
    """Planted orphans (bytes, chunk file, version record) are not reported while younger than the grace; once
    older they are reported (not clean); --repair deletes exactly them, and every live document still reads."""
    with Cairn(vault_settings) as cairn:
        cairn._embedder = embedder
        cairn.ingest([docs])
        before = {key for prefix in ("blobs/", "collections/") for key in cairn.vault.store.list(prefix)}
        planted = _plant_orphans(cairn)

        assert cairn.verify().clean  # an hour's grace: they may be a running writer's
        time.sleep(1.1)
        found = cairn.verify(orphan_grace_s=0.5)
        orphans = {issue.key: issue for issue in found.issues if issue.kind == "orphan_object"}
        assert set(orphans) == set(planted.values())
        assert not found.clean
        assert orphans[planted["chunks"]].doc_id == "ffffffffffffffff"
        assert orphans[planted["chunks"]].version == 1

        repaired = cairn.verify(repair=True, orphan_grace_s=0.5)
        assert repaired.clean
        assert all(issue.repaired for issue in repaired.issues)
        after = {key for prefix in ("blobs/", "collections/") for key in cairn.vault.store.list(prefix)}
        assert after == before
        assert cairn.verify(orphan_grace_s=0).issues == []
        for doc in cairn.documents():
            assert cairn.document_bytes(doc.source) == (docs.parent / doc.source).read_bytes()


def test_repair_keeps_orphans_under_retention_and_says_so(
    seaweed: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docs: Path, embedder
) -> None:  # type: ignore[no-untyped-def]
    """In an Object Lock bucket: an orphan chunk file of a collection under retention is kept without a delete
    being tried; an orphan blob under an object lock is kept (the store refuses); an unlocked orphan blob goes.
    Kept orphans are reported as kept, and leave the report clean (there is nothing to repair)."""
    bucket = f"orphan-lock-{tmp_path.name[-8:].lower().replace('_', '-')}"
    seaweed.create_bucket(bucket, object_lock=True)
    for name, value in _s3_env(seaweed).items():
        monkeypatch.setenv(name, value)
    with Cairn(Settings(home=tmp_path / "home", store=f"s3://{bucket}/vault", s3_addressing_style="path")) as cairn:
        cairn._embedder = embedder
        cairn.ingest([docs])
        cairn.set_retention("governance", 1)
        planted = _plant_orphans(cairn)
        locked_data = b"Locked bytes of a version that was never published.\n"
        locked = f"blobs/{sha256_hex(locked_data)[:2]}/{sha256_hex(locked_data)}"
        cairn.vault.store.put(locked, locked_data)
        cairn.vault.store.retain(locked, "GOVERNANCE", datetime.now(UTC) + timedelta(days=1))
        time.sleep(1.1)

        report = cairn.verify(repair=True, orphan_grace_s=0.5)
        by_key = {issue.key: issue for issue in report.issues if issue.kind == "orphan_object"}
        assert set(by_key) == {*planted.values(), locked}
        assert by_key[planted["blob"]].repaired
        assert not by_key[planted["blob"]].kept
        for key in (planted["chunks"], planted["version_record"]):
            assert by_key[key].kept
            assert not by_key[key].repaired
            assert "GOVERNANCE retention" in by_key[key].detail
        assert by_key[locked].kept
        assert "retention" in by_key[locked].detail
        assert report.clean
        remaining = set(cairn.vault.store.list("blobs/")) | set(cairn.vault.store.list("collections/"))
        assert planted["blob"] not in remaining
        assert {planted["chunks"], planted["version_record"], locked} <= remaining


@pytest.mark.slow
def test_a_writer_killed_before_it_reserved_its_batch_leaves_orphan_bytes_that_repair_removes(
    seaweed: SeaweedS3, seaweed_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder
) -> None:  # type: ignore[no-untyped-def]
    """A real ingest process stores its batch's original bytes, then waits for a maintenance lease the
    test holds, and is killed with SIGKILL there: its bytes belong to no version. verify reports exactly those,
    --repair deletes them, and the ingest run again stores and publishes everything."""
    env = {
        **os.environ,
        **_s3_env(seaweed),
        "CAIRN_HOME": str(tmp_path / "home"),
        "CAIRN_STORE": f"s3://{seaweed_bucket}/vault",
        "CAIRN_S3_ADDRESSING_STYLE": "path",
        "CAIRN_EMBED_WORKER": "false",
        "CAIRN_INGEST_BATCH_CHUNKS": "1000",  # one batch: nothing is published before the kill
    }
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for n in range(40):
        (corpus / f"note-{n:02d}.md").write_text(f"# Note {n}\n\nShipment {n * 7919 % 10007} left dock {n}.\n")
    for name, value in _s3_env(seaweed).items():
        monkeypatch.setenv(name, value)
    settings = Settings(home=tmp_path / "home", store=env["CAIRN_STORE"], s3_addressing_style="path")
    with Cairn(settings) as cairn:  # the collection, as a first ingest makes it (catalog and vault only)
        state = cairn.catalog.ensure_collection("default", embed_model=embedder.model_name, dim=embedder.dim)
        cairn.vault.write_collection_record(state)

    with Cairn(settings) as cairn:  # the catalog and vault only: Milvus Lite stays the writer's
        seeded = set(cairn.vault.store.list("blobs/"))
        writer = subprocess.Popen(
            [sys.executable, str(HARNESS), str(corpus)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 240
            while set(cairn.vault.store.list("blobs/")) == seeded:  # the batch is being stored
                assert writer.poll() is None, "the writer ended before it stored anything"
                assert time.monotonic() < deadline, "the writer stored nothing in time"
                time.sleep(0.02)
            assert cairn.catalog.hold_maintenance("default", "test", ttl_s=600)
            # It embeds, then waits for the lease: once its bytes stop changing for a while, it waits.
            stored, since = set(cairn.vault.store.list("blobs/")), time.monotonic()
            while time.monotonic() - since < 5:
                assert writer.poll() is None, "the writer ended: it did not wait for the lease"
                assert time.monotonic() < deadline, "the writer kept storing"
                now = set(cairn.vault.store.list("blobs/"))
                if now != stored:
                    stored, since = now, time.monotonic()
                time.sleep(0.2)
            assert cairn.catalog.pending_versions("default") == []
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=60)
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
            cairn.catalog.release_maintenance("default", "test")
        left = stored - seeded
        assert len(left) == 40
    time.sleep(1.1)

    with Cairn(settings) as cairn:
        cairn._embedder = embedder
        report = cairn.verify(orphan_grace_s=0.5)
        assert {issue.key for issue in report.issues if issue.kind == "orphan_object"} == left
        assert cairn.verify(repair=True, orphan_grace_s=0.5).clean
        assert set(cairn.vault.store.list("blobs/")) == seeded
        assert cairn.ingest([corpus]).ingested == 40
        assert len(set(cairn.vault.store.list("blobs/")) - seeded) == 40
        assert cairn.verify(orphan_grace_s=0).issues == []
