"""The `ObjectStore` contract, run against every backend: a directory and S3 (SeaweedFS), plain and sealed.

Every backend the vault can use must pass all of these; the backends are listed in conftest.py (BACKENDS).
"""

from __future__ import annotations

import os
import time

import pytest

from cairn.errors import NotFound, StorageError
from cairn.vault import ObjectStore


def test_put_then_get_returns_the_same_bytes(store: ObjectStore) -> None:
    """Every byte value survives a round trip."""
    data = bytes(range(256)) * 4
    store.put("docs/a/v1.bin", data)
    assert store.get("docs/a/v1.bin") == data


def test_put_replaces_an_existing_object(store: ObjectStore) -> None:
    """A second put of a key replaces its bytes."""
    store.put("manifest.json", b"one")
    store.put("manifest.json", b"two")
    assert store.get("manifest.json") == b"two"


def test_put_if_absent_writes_once_and_never_overwrites(store: ObjectStore) -> None:
    """The first conditional write wins; later ones report False and change nothing."""
    assert store.put_if_absent("blobs/ab/abc", b"first") is True
    assert store.put_if_absent("blobs/ab/abc", b"second") is False
    assert store.get("blobs/ab/abc") == b"first"


def test_missing_objects_are_not_found_and_absent(store: ObjectStore) -> None:
    """get of a missing key raises NotFound; exists says False; delete of it is no error."""
    with pytest.raises(NotFound):
        store.get("nothing/here")
    assert store.exists("nothing/here") is False
    store.delete("nothing/here")


def test_exists_and_delete(store: ObjectStore) -> None:
    """exists follows put and delete."""
    store.put("x/y", b"1")
    assert store.exists("x/y") is True
    store.delete("x/y")
    assert store.exists("x/y") is False
    with pytest.raises(NotFound):
        store.get("x/y")


def test_list_yields_only_keys_under_the_prefix_in_order(store: ObjectStore) -> None:
    """list(prefix) returns exactly the keys under that prefix, sorted; not 'cc/' for 'c/'."""
    for key in ["c/2", "c/1", "c/sub/3", "d/1", "cc/1"]:
        store.put(key, b"")
    assert list(store.list("c/")) == ["c/1", "c/2", "c/sub/3"]
    assert list(store.list("e/")) == []


def test_list_dated_gives_each_key_under_the_prefix_with_when_it_was_written(store: ObjectStore) -> None:
    """list_dated(prefix) yields the same keys as list, each with its write time (Unix seconds, this minute)."""
    before = time.time()
    for key in ["c/2", "c/1", "d/1"]:
        store.put(key, b"x")
    dated = list(store.list_dated("c/"))
    assert [key for key, _ in dated] == ["c/1", "c/2"]
    # Object stores keep whole seconds (S3's LastModified), and their clock may be a little off ours.
    assert all(before - 60 <= written <= time.time() + 60 for _, written in dated)


@pytest.mark.parametrize("key", ["../escape", "/abs", "a/../b", "a//b", "", "a\\b"])
def test_keys_that_could_escape_are_refused(store: ObjectStore, key: str) -> None:
    """Keys with '..', absolute paths or empty parts are refused before any write."""
    with pytest.raises(StorageError, match="invalid object key"):
        store.put(key, b"x")


def test_a_large_object_round_trips(store: ObjectStore) -> None:
    """An object above the S3 multipart threshold (12 MiB; parts of 5 MiB) is stored and read whole."""
    data = os.urandom(1024 * 1024) * 12
    store.put("big/object", data)
    assert store.get("big/object") == data


def test_describe_names_the_location(store: ObjectStore) -> None:
    """describe() says where objects live: a path or an s3:// URL."""
    where = store.describe()
    assert where.startswith(("/", "s3://"))
