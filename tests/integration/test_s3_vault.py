"""The vault on a real S3 server (SeaweedFS): configuration from AWS_* variables, integrity, encryption,
and the index rebuilt on a new machine from nothing but the bucket."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from cairn import Cairn, Settings
from cairn.errors import ConfigError, IntegrityError, StorageError
from cairn.stack.seaweed import SeaweedS3
from cairn.vault.envelope import EnvelopeStore, MasterKey
from cairn.vault.s3 import S3Options, S3Store

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def _marker() -> bytes:
    """A plaintext marker inside random bytes, so that storage compression cannot hide it."""
    return os.urandom(2048) + b"MARKER-" + os.urandom(8).hex().encode() + b"-MARKER" + os.urandom(2048)


def _on_disk(seaweed: SeaweedS3, needle: bytes) -> bool:
    return any(needle in path.read_bytes() for path in seaweed.data_dir.rglob("*") if path.is_file())


@pytest.fixture
def aws_env(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard AWS variables pointing at the test server, as an operator would set them."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", seaweed.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    monkeypatch.setenv("AWS_REGION", seaweed.region)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_a_vault_on_s3_serves_a_new_machine_after_rebuild(
    aws_env: None, seaweed_bucket: str, docs: Path, tmp_path: Path, embedder
) -> None:  # type: ignore[no-untyped-def]
    """Ingest with CAIRN_STORE=s3://...; a second home with an empty catalog and Milvus rebuilds from the bucket
    alone: its catalog is recreated from the vault's version records on first use, its index by rebuild."""
    store = f"s3://{seaweed_bucket}/team-a"
    first = Cairn(Settings(home=tmp_path / "one", store=store, s3_addressing_style="path"))
    first._embedder = embedder
    report = first.ingest([docs])
    first.close()
    assert report.ingested == 3
    keys = list(S3Store(store, S3Options(addressing_style="path")).list(""))
    assert "collections/default/collection.json" in keys  # what a new machine's catalog is recreated from
    assert sum(k.startswith("collections/default/docs/") and k.endswith(".json") for k in keys) == 3
    assert sum(k.startswith("blobs/") for k in keys) == 3

    second = Cairn(Settings(home=tmp_path / "two", store=store, s3_addressing_style="path"))
    second._embedder = embedder
    try:
        assert second.rebuild() == report.chunks
        assert Path(second.search("How many days of parental leave?", k=1).hits[0].source).name == "leave.md"
        assert second.verify().clean
    finally:
        second.close()


def test_reads_are_checked_against_the_sha256_written_with_the_object(seaweed: SeaweedS3, seaweed_bucket: str) -> None:
    """An object whose bytes no longer match its recorded SHA-256 is refused, not served."""
    store = S3Store(f"s3://{seaweed_bucket}", client=seaweed.client())
    store.put("a/b", b"original")
    client = seaweed.client()
    client.put_object(
        Bucket=seaweed_bucket,
        Key="a/b",
        Body=b"changed",
        Metadata={"cairn-sha256": hashlib.sha256(b"original").hexdigest()},
    )
    with pytest.raises(IntegrityError, match="corrupt"):
        store.get("a/b")


def test_sse_c_objects_are_unreadable_without_the_customer_key(seaweed: SeaweedS3, seaweed_bucket: str) -> None:
    """With SSE-C the server stores ciphertext; reading without the key fails with a message naming SSE-C."""
    key = os.urandom(32)
    data = _marker()
    sealed = S3Store(f"s3://{seaweed_bucket}", S3Options(sse_c_key=key), client=seaweed.client())
    sealed.put("secret", data)
    assert sealed.get("secret") == data
    assert not _on_disk(seaweed, data[2048:2080])

    plain = S3Store(f"s3://{seaweed_bucket}", client=seaweed.client())
    with pytest.raises(StorageError, match="SSE-C"):
        plain.get("secret")


def test_sse_s3_objects_are_encrypted_at_rest(seaweed: SeaweedS3, seaweed_bucket: str) -> None:
    """With SSE-S3 (AES256) the object is marked encrypted by the server and not stored in plaintext."""
    data = _marker()
    store = S3Store(f"s3://{seaweed_bucket}", S3Options(sse="AES256"), client=seaweed.client())
    store.put("doc", data)
    head = seaweed.client().head_object(Bucket=seaweed_bucket, Key="doc")
    assert head["ServerSideEncryption"] == "AES256"
    assert store.get("doc") == data
    assert not _on_disk(seaweed, data[2048:2080])


def test_sse_kms_objects_name_their_key_and_are_encrypted_at_rest(seaweed: SeaweedS3, seaweed_bucket: str) -> None:
    """With SSE-KMS the server encrypts under the named KMS key and stores no plaintext."""
    data = _marker()
    options = S3Options(sse="aws:kms", kms_key_id="alias/seaweedfs-default")
    store = S3Store(f"s3://{seaweed_bucket}", options, client=seaweed.client())
    store.put("doc", data)
    head = seaweed.client().head_object(Bucket=seaweed_bucket, Key="doc")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert store.get("doc") == data
    assert not _on_disk(seaweed, data[2048:2080])


def test_unencrypted_objects_are_plaintext_on_disk(seaweed: SeaweedS3, seaweed_bucket: str) -> None:
    """The control for the two tests above: without encryption the marker is found on disk."""
    data = _marker()
    S3Store(f"s3://{seaweed_bucket}", client=seaweed.client()).put("open", data)
    assert _on_disk(seaweed, data[2048:2080])


def test_envelope_encryption_on_s3_keeps_ciphertext_in_the_store(seaweed: SeaweedS3, seaweed_bucket: str) -> None:
    """Client-side sealed objects are ciphertext on the server; without the key the vault refuses clearly."""
    data = _marker()
    inner = S3Store(f"s3://{seaweed_bucket}", client=seaweed.client())
    EnvelopeStore(inner, MasterKey(os.urandom(32))).put("m", data)
    assert data[2048:2080] not in inner.get("m")
    assert not _on_disk(seaweed, data[2048:2080])
    with pytest.raises(ConfigError, match="encrypted"):
        EnvelopeStore(inner, None).get("m")


def test_bad_credentials_and_missing_buckets_are_explained(seaweed: SeaweedS3, seaweed_bucket: str) -> None:
    """A wrong secret and an unknown bucket give errors that say what to fix."""
    import boto3
    from botocore.config import Config

    wrong = boto3.session.Session().client(
        "s3",
        endpoint_url=seaweed.endpoint_url,
        aws_access_key_id=seaweed.access_key,
        aws_secret_access_key="not-the-secret",
        region_name=seaweed.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    with pytest.raises(StorageError, match="AWS_SECRET_ACCESS_KEY"):
        S3Store(f"s3://{seaweed_bucket}", client=wrong).put("x", b"1")
    with pytest.raises(StorageError, match="create the bucket"):
        S3Store("s3://no-such-bucket-here", client=seaweed.client()).put("x", b"1")
