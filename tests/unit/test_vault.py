from pathlib import Path

import numpy as np
import pytest

from cairn.errors import IntegrityError, NotFound, StorageError
from cairn.models import Chunk, Location
from cairn.vault import EmbeddingCache, LocalDirStore, Manifest, Vault, sha256_hex


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault(LocalDirStore(tmp_path / "vault"))


def test_blobs_are_content_addressed_and_deduplicated(vault: Vault) -> None:
    """The same bytes stored twice make one object named by their sha256."""
    digest = vault.put_blob(b"policy text")
    assert digest == sha256_hex(b"policy text")
    assert vault.put_blob(b"policy text") == digest
    assert list(vault.store.list("blobs/")) == [f"blobs/{digest[:2]}/{digest}"]
    assert vault.get_blob(digest) == b"policy text"


def test_corrupted_blob_is_detected_on_read(vault: Vault) -> None:
    """Bytes changed behind the vault's back raise IntegrityError instead of being served."""
    digest = vault.put_blob(b"original")
    vault.store.put(f"blobs/{digest[:2]}/{digest}", b"tampered")
    with pytest.raises(IntegrityError, match="corrupt"):
        vault.get_blob(digest)


def test_put_if_absent_never_overwrites(tmp_path: Path) -> None:
    """An immutable write leaves an existing object as it was."""
    store = LocalDirStore(tmp_path)
    assert store.put_if_absent("a/b", b"first") is True
    assert store.put_if_absent("a/b", b"second") is False
    assert store.get("a/b") == b"first"


@pytest.mark.parametrize("key", ["../escape", "/abs", "a/../b", "a//b", "", "a\\b"])
def test_keys_cannot_escape_the_root(tmp_path: Path, key: str) -> None:
    """Keys with '..', absolute paths or empty parts are refused."""
    with pytest.raises(StorageError, match="invalid object key"):
        LocalDirStore(tmp_path).put(key, b"x")


def test_missing_object_is_not_found(tmp_path: Path) -> None:
    """Reading a key that does not exist raises NotFound."""
    with pytest.raises(NotFound):
        LocalDirStore(tmp_path).get("nothing/here")


def test_list_returns_only_keys_under_the_prefix_sorted(tmp_path: Path) -> None:
    """list(prefix) yields the keys under that prefix, in order, and nothing else."""
    store = LocalDirStore(tmp_path)
    for key in ["c/2", "c/1", "d/1", "cc/1"]:
        store.put(key, b"")
    assert list(store.list("c/")) == ["c/1", "c/2"]


def test_manifest_round_trips(vault: Vault) -> None:
    """A saved manifest loads back equal; a collection without one loads as None."""
    manifest = Manifest(collection="hr", embed_model="m", dim=3)
    vault.save_manifest(manifest)
    assert vault.load_manifest("hr") == manifest
    assert vault.load_manifest("other") is None
    assert vault.list_collections() == ["hr"]


def test_chunks_round_trip_through_parquet_with_vectors(vault: Vault) -> None:
    """Chunk texts, locations and embeddings read back exactly as written."""
    chunks = [
        Chunk(
            chunk_id=f"c{i}",
            doc_id="d",
            version=2,
            ordinal=i,
            text=f"text {i}",
            location=Location(page=i + 1, heading_path=("A", "B")),
            token_count=2,
        )
        for i in range(3)
    ]
    vectors = np.random.default_rng(0).random((3, 8), dtype=np.float32)
    key = vault.chunks_key("hr", "d", 2)
    vault.write_chunks(key, chunks, vectors, metadata={"doc_id": "d"})
    read, read_vectors = vault.read_chunks(key, doc_id="d", version=2)
    assert read == chunks
    np.testing.assert_array_equal(read_vectors, vectors)


def test_embedding_cache_persists_across_instances(vault: Vault) -> None:
    """Flushed vectors are found again by a new cache over the same vault, keyed by model."""
    cache = EmbeddingCache(vault, "model-a")
    vector = np.arange(4, dtype=np.float32)
    cache.add_many({"h1": vector})
    cache.flush()
    again = EmbeddingCache(vault, "model-a")
    np.testing.assert_array_equal(again.get_many(["h1", "h2"])["h1"], vector)
    assert "h2" not in again.get_many(["h2"])
    assert EmbeddingCache(vault, "model-b").get_many(["h1"]) == {}
