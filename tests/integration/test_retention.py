"""Immutability: versions under S3 Object Lock cannot be deleted, `docs rm --purge` explains why; without a
lock, purging deletes every version but keeps original bytes another document still uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn import Cairn, Settings
from cairn.errors import ConfigError, NotFound, StorageError
from cairn.stack.seaweed import SeaweedS3
from cairn.vault.s3 import S3Store

pytestmark = pytest.mark.integration


@pytest.fixture
def locked(seaweed: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder):  # type: ignore[no-untyped-def]
    """A Cairn whose vault is a bucket created with Object Lock enabled."""
    bucket = f"lock-{tmp_path.name[-12:].lower().replace('_', '-')}"
    seaweed.create_bucket(bucket, object_lock=True)
    for name, value in {
        "AWS_ENDPOINT_URL": seaweed.endpoint_url,
        "AWS_ACCESS_KEY_ID": seaweed.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
        "AWS_REGION": seaweed.region,
    }.items():
        monkeypatch.setenv(name, value)
    cairn = Cairn(Settings(home=tmp_path / "home", store=f"s3://{bucket}/vault", s3_addressing_style="path"))
    cairn._embedder = embedder
    yield cairn, bucket
    cairn.close()


def test_locked_versions_cannot_be_deleted_and_purge_explains_why(
    locked: tuple[Cairn, str], seaweed: SeaweedS3, docs: Path
) -> None:
    """Under COMPLIANCE retention the store refuses version deletes; purge says until when and keeps the bytes."""
    cairn, bucket = locked
    cairn.ingest([docs])
    cairn.set_retention("compliance", 1)
    assert cairn.collection_info().retention == "COMPLIANCE 1 days"
    leave = cairn.document(str(docs / "leave.md"))
    blob_key = f"vault/blobs/{leave.versions[0].sha256[:2]}/{leave.versions[0].sha256}"
    client = seaweed.client()
    assert client.get_object_retention(Bucket=bucket, Key=blob_key)["Retention"]["Mode"] == "COMPLIANCE"
    version_id = client.head_object(Bucket=bucket, Key=blob_key)["VersionId"]
    with pytest.raises(Exception, match="AccessDenied"):
        client.delete_object(Bucket=bucket, Key=blob_key, VersionId=version_id)

    with pytest.raises(
        StorageError, match=r"removed from search, but its stored versions are kept.*COMPLIANCE retention until"
    ):
        cairn.purge_documents([str(docs / "leave.md")])

    assert all(not h.source.endswith("leave.md") for h in cairn.search("parental leave", k=5).hits)
    assert cairn.document_bytes(str(docs / "leave.md"), version=1) == (docs / "leave.md").read_bytes()
    # New versions ingested later are locked as well.
    (docs / "batteries.txt").write_text("Batteries are charged on the steel shelf only.\n")
    cairn.ingest([docs])
    newest = cairn.document(str(docs / "batteries.txt")).versions[-1]
    key = f"vault/blobs/{newest.sha256[:2]}/{newest.sha256}"
    assert client.get_object_retention(Bucket=bucket, Key=key)["Retention"]["Mode"] == "COMPLIANCE"


def test_retention_needs_an_object_lock_bucket(cairn: Cairn, docs: Path) -> None:
    """On a local vault (no object lock), asking for retention is refused with the reason."""
    cairn.ingest([docs])
    with pytest.raises(ConfigError, match="no object lock"):
        cairn.set_retention("governance", 30)


def test_purge_deletes_every_version_but_keeps_shared_bytes(cairn: Cairn, docs: Path) -> None:
    """Without a lock, purge removes the document's versions; identical bytes of another document stay."""
    (docs / "copy.md").write_bytes((docs / "leave.md").read_bytes())
    cairn.ingest([docs])
    digest = cairn.document(str(docs / "leave.md")).versions[0].sha256

    purged = cairn.purge_documents([str(docs / "leave.md")])

    assert [Path(d.source).name for d in purged] == ["leave.md"]
    with pytest.raises(NotFound):
        cairn.document(str(docs / "leave.md"))
    assert cairn.vault.get_blob(digest) == (docs / "copy.md").read_bytes()  # still used by copy.md
    cairn.purge_documents([str(docs / "copy.md")])
    with pytest.raises(NotFound):
        cairn.vault.get_blob(digest)
    assert cairn.verify().clean


def test_s3_delete_removes_every_version_in_a_versioned_bucket(seaweed: SeaweedS3) -> None:
    """A delete in a versioned bucket leaves no version behind (not just a delete marker)."""
    seaweed.create_bucket("versioned-bucket", object_lock=True)  # Object Lock implies versioning
    store = S3Store("s3://versioned-bucket", client=seaweed.client())
    store.put("a", b"one")
    store.put("a", b"two")
    store.delete("a")
    versions = seaweed.client().list_object_versions(Bucket="versioned-bucket", Prefix="a")
    assert versions.get("Versions", []) == []
    assert store.exists("a") is False
