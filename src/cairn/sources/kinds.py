"""Where a source's objects are: a local folder or an S3 prefix; how they are listed and fetched.

A `SourceReader` lists every object of its source (a generator: the listing is complete only when
it runs to its end; a listing that raises halfway removes nothing) and fetches one object's bytes
to a local file, streamed. Each object has a *key* within its source and an *identity*, the
document source it becomes: ``s3://bucket/key`` for S3, ``FOLDER/relative/path`` for a folder
(as `cairn ingest FOLDER` names its files, so a folder ingested before and then registered as a
source keeps its documents).

S3 credentials are never stored: a source names the environment variables that hold them
(``access_key_env``, ``secret_key_env``); without them the AWS default chain applies.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cairn.catalog import SourceRecord
from cairn.errors import ConfigError, SourceError

__all__ = [
    "ACL_TAG_FIELD",
    "DirectoryReader",
    "Fetched",
    "ListedObject",
    "S3Reader",
    "SourceReader",
    "metadata_key",
    "reader_for",
    "source_kind",
]

_BLOCK = 1024 * 1024
ACL_TAG_FIELD = "acl_tag"  # in a listed object's metadata: the value of the source's ACL tag


@dataclass(frozen=True)
class ListedObject:
    """One entry of a listing: the object's key in its source and what the listing says of it."""

    key: str
    size: int
    etag: str | None = None
    modified: float | None = None
    version_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fetched:
    """An object's bytes in a local file, their content hash, and the metadata its document gets."""

    path: Path
    sha256: str
    metadata: dict[str, str] = field(default_factory=dict)


class SourceReader(Protocol):
    """Lists and fetches the objects of one source."""

    requests: int

    def listing(self) -> Iterator[ListedObject]: ...
    def identity(self, key: str) -> str: ...
    def fetch(self, listed: ListedObject, folder: Path) -> Fetched: ...


def source_kind(uri: str) -> str:
    """The kind of source a URI names: ``s3://…`` S3, ``git+…`` a Git repository, else a local folder."""
    if uri.startswith("s3://"):
        return "s3"
    if uri.startswith("git+"):
        return "git"
    if "://" in uri:
        raise ConfigError(
            f"cannot sync {uri!r}: use s3://BUCKET/PREFIX, git+URL (git+https://…, git+/path/to/repo) or a local folder"
        )
    return "directory"


def metadata_key(raw: str) -> str | None:
    """A metadata name search filters accept (``x-team`` → ``x_team``); ``None`` when none can be made."""
    key = re.sub(r"[^A-Za-z0-9_]", "_", raw.strip())[:64]
    if key and not key[0].isdigit():
        return key
    return None


def reader_for(source: SourceRecord, *, home: Path | None = None) -> SourceReader:
    """The reader of *source*; a remote Git repository is mirrored under *home* (``CAIRN_HOME/sources``)."""
    if source.kind == "s3":
        return S3Reader(source)
    if source.kind == "directory":
        return DirectoryReader(source)
    if source.kind == "git":
        from cairn.sources.git import GitReader

        return GitReader(source, home=home)
    raise ConfigError(f"source {source.name!r} is of kind {source.kind!r}, which this version cannot sync")


class DirectoryReader:
    """A local folder: every regular file under it, hidden files and folders skipped."""

    def __init__(self, source: SourceRecord) -> None:
        self.name = source.name
        self.root = Path(source.uri).expanduser().absolute()
        self.requests = 0

    def listing(self) -> Iterator[ListedObject]:
        if not self.root.is_dir():
            raise SourceError(
                f"source {self.name!r}: {self.root} is not a folder (unmounted or moved?); nothing was removed",
                source=self.name,
            )

        def failed(exc: OSError) -> None:
            raise SourceError(
                f"source {self.name!r}: cannot list {exc.filename}: {exc.strerror}; nothing was removed",
                source=self.name,
            ) from exc

        for folder, dirs, files in os.walk(self.root, onerror=failed):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for file_name in sorted(files):
                if file_name.startswith("."):
                    continue
                path = Path(folder) / file_name
                try:
                    stat = path.stat()
                except OSError:
                    continue  # gone between the listing and the stat: the next sync sees it gone
                if path.is_file():
                    yield ListedObject(
                        key=path.relative_to(self.root).as_posix(), size=stat.st_size, modified=stat.st_mtime_ns / 1e9
                    )

    def identity(self, key: str) -> str:
        return f"{self.root.name}/{key}"

    def fetch(self, listed: ListedObject, folder: Path) -> Fetched:
        """The file itself (nothing is copied) and its content hash."""
        path = self.root / listed.key
        try:
            with path.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            return Fetched(path, digest, {"source_name": self.name, "source_key": listed.key})
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror}", source=self.name) from exc


class S3Reader:
    """An S3 prefix on any S3-compatible endpoint, with its own endpoint, credentials, addressing and TLS."""

    def __init__(self, source: SourceRecord, *, client: Any = None) -> None:
        self.name = source.name
        bucket, _, prefix = source.uri[len("s3://") :].partition("/")
        if not bucket:
            raise ConfigError(f"source {source.name!r}: {source.uri!r} names no bucket; use s3://BUCKET[/PREFIX]")
        self.bucket = bucket
        self.prefix = prefix.lstrip("/")
        self.settings = source.settings
        self.client = client if client is not None else _client(source)
        self.requests = 0
        self.page_size = 1000

    def listing(self) -> Iterator[ListedObject]:
        token: str | None = None
        while True:
            arguments: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix, "MaxKeys": self.page_size}
            if token:
                arguments["ContinuationToken"] = token
            try:
                self.requests += 1
                page = self.client.list_objects_v2(**arguments)
            except Exception as exc:  # botocore's errors: connection, HTTP, credentials
                raise SourceError(
                    f"source {self.name!r}: listing s3://{self.bucket}/{self.prefix} failed ({_reason(exc)}); "
                    "nothing was removed; check the endpoint and credentials, then sync again",
                    source=self.name,
                ) from exc
            for entry in page.get("Contents", []):
                key = str(entry["Key"])
                if key.endswith("/"):
                    continue  # a folder marker
                yield ListedObject(
                    key=key,
                    size=int(entry.get("Size", 0)),
                    etag=str(entry.get("ETag", "")).strip('"') or None,
                    modified=entry["LastModified"].timestamp() if entry.get("LastModified") else None,
                    metadata=self._acl_tag(key),
                )
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")
            if not token:
                raise SourceError(
                    f"source {self.name!r}: the listing was cut short (truncated without a continuation); "
                    "nothing was removed",
                    source=self.name,
                )

    def identity(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def fetch(self, listed: ListedObject, folder: Path) -> Fetched:
        """Stream the object to a file in *folder*; with it, its hash, user metadata (and tags, if asked for)."""
        target = folder / hashlib.sha256(listed.key.encode()).hexdigest()[:32]
        digest = hashlib.sha256()
        try:
            self.requests += 1
            response = self.client.get_object(Bucket=self.bucket, Key=listed.key)
            body = response["Body"]
            with target.open("wb") as out:
                while block := body.read(_BLOCK):
                    digest.update(block)
                    out.write(block)
        except Exception as exc:
            raise SourceError(
                f"source {self.name!r}: cannot fetch s3://{self.bucket}/{listed.key} ({_reason(exc)})",
                source=self.name,
            ) from exc
        metadata = {"source_name": self.name, "source_key": listed.key}
        for raw, value in (response.get("Metadata") or {}).items():
            if (key := metadata_key(str(raw))) is not None:
                metadata.setdefault(key, str(value))
        if self.settings.get("tags"):
            metadata.update(self._tags(listed.key))
        return Fetched(target, digest.hexdigest(), metadata)

    def _acl_tag(self, key: str) -> dict[str, str]:
        """The value of the source's ACL tag on *key* (one request per object: tags are not in a listing)."""
        tag = self.settings.get("acl_tag")
        if not tag:
            return {}
        found = [t for t in self._tag_set(key) if t.get("Key") == tag]
        return {ACL_TAG_FIELD: str(found[0].get("Value", ""))} if found else {}

    def _tag_set(self, key: str) -> list[dict[str, str]]:
        try:
            self.requests += 1
            return list(self.client.get_object_tagging(Bucket=self.bucket, Key=key).get("TagSet", []))
        except Exception as exc:
            raise SourceError(
                f"source {self.name!r}: cannot read the tags of s3://{self.bucket}/{key} ({_reason(exc)}); "
                "nothing was removed",
                source=self.name,
            ) from exc

    def _tags(self, key: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        for tag in self._tag_set(key):
            if (name := metadata_key(f"tag_{tag.get('Key', '')}")) is not None:
                tags[name] = str(tag.get("Value", ""))
        return tags


def _client(source: SourceRecord) -> Any:
    import boto3
    from botocore.config import Config

    settings = source.settings
    credentials: dict[str, str] = {}
    for setting, argument in (("access_key_env", "aws_access_key_id"), ("secret_key_env", "aws_secret_access_key")):
        variable = settings.get(setting)
        if variable:
            value = os.environ.get(str(variable))
            if not value:
                raise ConfigError(
                    f"source {source.name!r} takes its S3 credentials from ${variable}, which is not set here; "
                    "set it in this process's environment"
                )
            credentials[argument] = value
    verify: bool | str = True
    if settings.get("ca_bundle"):
        verify = str(settings["ca_bundle"])
    elif settings.get("verify_tls") is False:
        verify = False
    config = Config(
        s3={"addressing_style": "path" if settings.get("path_style") else "auto"},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
    )
    return boto3.client(
        "s3",
        endpoint_url=str(settings["endpoint"]) if settings.get("endpoint") else None,
        region_name=str(settings.get("region") or "us-east-1"),
        verify=verify,
        config=config,
        **credentials,
    )


def _reason(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return f"{error.get('Code', '?')}: {error.get('Message', '')}".strip(": ")
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
