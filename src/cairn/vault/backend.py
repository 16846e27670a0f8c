"""The object-store seam: the few operations the vault needs from any backend.

A local directory and an S3 bucket implement it (`LocalDirStore`, `cairn.vault.s3.S3Store`);
`cairn.vault.envelope.EnvelopeStore` wraps either to encrypt. Keys are
``/``-separated relative paths (``blobs/ab/abcd...``); backends never interpret them.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Protocol, runtime_checkable

from cairn.errors import ConfigError, DiskFull, NotFound, StorageError
from cairn.localfiles import private_dir

__all__ = ["LocalDirStore", "ObjectStore", "check_key"]


@runtime_checkable
class ObjectStore(Protocol):
    """Whole-object reads and writes. Writes are atomic: a reader sees all of an object or none."""

    def put(self, key: str, data: bytes) -> None:
        """Store *data* under *key*, replacing what was there."""

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store *data* under *key* unless the key exists; return whether it was written."""

    def get(self, key: str) -> bytes:
        """Return the object's bytes; raise ``NotFound`` if there is none."""

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> Iterator[str]:
        """Yield every key that starts with *prefix*, in lexicographic order."""

    def list_dated(self, prefix: str) -> Iterator[tuple[str, float]]:
        """Like `list`, with the time each object was last written (Unix seconds): how old an object is."""

    def delete(self, key: str) -> None:
        """Remove the object (every stored version of it); a missing key is not an error.

        Raises `StorageError` naming the retention when the object is under an object lock.
        """

    def retain(self, key: str, mode: str, until: datetime) -> None:
        """Lock the object against deletion and overwrite until *until* (``GOVERNANCE`` or ``COMPLIANCE``).

        Raises `ConfigError` where the store has no object lock.
        """

    def supports_retention(self) -> bool:
        """Whether `retain` works here (an S3 bucket created with Object Lock enabled)."""

    def describe(self) -> str:
        """Where the objects live, for messages (``/home/me/.cairn/vault``, ``s3://b/p``)."""


def check_key(key: str) -> str:
    """Reject keys that could escape the store's root or are not plain relative paths."""
    path = PurePosixPath(key)
    if not key or key.startswith("/") or "\\" in key or any(part in ("", ".", "..") for part in key.split("/")):
        raise StorageError(f"invalid object key {key!r}: keys are relative paths without '.' or '..'", key=key)
    return str(path)


class LocalDirStore:
    """Objects as files under a root directory; atomic writes through rename."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        try:
            private_dir(self.root)  # 0700: the vault is this user's alone (`cairn.localfiles`)
        except OSError as exc:
            raise StorageError(f"cannot create the vault directory {self.root}: {exc.strerror}") from exc

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    @staticmethod
    def _temp_copy(path: Path, data: bytes) -> str:
        """Write *data* durably to a temporary file beside *path*; return its name."""
        private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mkstemp creates files 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return tmp

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            os.replace(self._temp_copy(path, data), path)
        except OSError as exc:
            raise self._write_error(key, exc) from exc

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        if path.exists():
            return False
        try:
            tmp = self._temp_copy(path, data)
            try:
                # link() fails if the target exists, so two writers never replace each other.
                os.link(tmp, path)
                return True
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
        except OSError as exc:
            raise self._write_error(key, exc) from exc

    def _write_error(self, key: str, exc: OSError) -> StorageError:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return DiskFull(
                f"the disk holding the vault at {self.root} is full ({exc.strerror}) while writing {key}: nothing "
                "half-written was kept; free space on that disk (or move CAIRN_HOME / CAIRN_STORE to a larger one), "
                "then run the same command again",
                path=str(self.root),
            )
        return StorageError(f"cannot write {key} in {self.root}: {exc.strerror}", key=key)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"no object {key} in the vault at {self.root}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {key} in {self.root}: {exc.strerror}", key=key) from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[str]:
        keys = []
        # Walk only the directory the prefix names, not the whole vault.
        base = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        if not base.is_dir():
            return
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)

    def list_dated(self, prefix: str) -> Iterator[tuple[str, float]]:
        for key in self.list(prefix):
            try:
                yield key, self._path(key).stat().st_mtime
            except FileNotFoundError:  # deleted since it was listed
                continue

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {key} in {self.root}: {exc.strerror}", key=key) from exc

    def retain(self, key: str, mode: str, until: datetime) -> None:
        raise ConfigError(
            f"the vault at {self.root} is a local directory, which has no object lock; "
            "retention needs an S3 bucket created with Object Lock enabled"
        )

    def supports_retention(self) -> bool:
        return False

    def describe(self) -> str:
        return str(self.root)
