"""The vault on an S3-compatible object store (AWS S3, HPE Alletra MP X10000, MinIO, Ceph, SeaweedFS).

Endpoint, region and credentials come from the standard AWS sources, exactly as the AWS CLI reads
them (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, ``~/.aws/config``, instance roles...). cairn adds only what those do not cover:
path-style addressing, TLS verification, retries, server-side encryption and the multipart size.

Every object carries the SHA-256 of its bytes as user metadata (``x-amz-meta-cairn-sha256``); a
read recomputes it and raises `IntegrityError` on a mismatch, so corruption in transit or at rest
is never served. Writes of objects larger than the multipart threshold go up in parts, in parallel.
"""

from __future__ import annotations

import builtins
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cairn.errors import ConfigError, IntegrityError, NotFound, StorageError

from .backend import check_key

__all__ = ["S3Options", "S3Store", "parse_s3_url"]

_SHA_META = "cairn-sha256"
_MIB = 1024 * 1024


@dataclass(frozen=True)
class S3Options:
    """How to reach and write to the bucket, beyond what the AWS configuration gives.

    ``sse``: ``None`` (the bucket's default), ``"AES256"`` (SSE-S3) or ``"aws:kms"`` (SSE-KMS with
    ``kms_key_id``, or the account's default key). ``sse_c_key``: a 32-byte customer key (SSE-C);
    the server encrypts with it and keeps no copy, so every read must present it too.
    """

    addressing_style: str = "auto"
    verify: bool | str = True
    max_attempts: int = 3
    timeout_s: float = 10.0
    multipart_threshold: int = 16 * _MIB
    sse: str | None = None
    kms_key_id: str | None = None
    sse_c_key: bytes | None = field(default=None, repr=False)


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/some/prefix`` into the bucket and a prefix ending in ``/`` (or empty)."""
    if not url.startswith("s3://"):
        raise ConfigError(f"CAIRN_STORE={url!r} is not an s3:// URL")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise ConfigError(f"CAIRN_STORE={url!r} names no bucket; use s3://BUCKET[/PREFIX]")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


class S3Store:
    """Objects in ``bucket`` under ``prefix``; implements the vault's `ObjectStore` protocol."""

    def __init__(self, url: str, options: S3Options | None = None, *, client: Any = None) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.options = options or S3Options()
        self.client = client if client is not None else _client(self.options)
        from boto3.s3.transfer import TransferConfig

        self._transfer = TransferConfig(
            multipart_threshold=self.options.multipart_threshold,
            multipart_chunksize=max(8 * _MIB, self.options.multipart_threshold // 2),
        )

    # -- protocol ------------------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> None:
        self._upload(key, data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        # A small object goes up in one conditional PUT (If-None-Match: *); a large one, or a store
        # without conditional writes, is checked first. Content-addressed keys make check-then-write
        # harmless, since a racing writer writes the same bytes.
        if len(data) < self.options.multipart_threshold:
            try:
                self.client.put_object(IfNoneMatch="*", **self._put_args(key, data), Body=data)
                return True
            except Exception as exc:
                if _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                    return False
                if _code(exc) not in ("NotImplemented", "501"):
                    raise self._error("write", key, exc) from exc
        if self.exists(key):
            return False
        self._upload(key, data)
        return True

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key), **self._sse_c_args())
            data: bytes = response["Body"].read()
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                raise NotFound(f"no object {key} in the vault at {self.describe()}") from exc
            raise self._error("read", key, exc) from exc
        expected = response.get("Metadata", {}).get(_SHA_META)
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise IntegrityError(
                f"object {key} in {self.describe()} is corrupt: its bytes do not match the SHA-256 "
                "recorded when it was written; `cairn verify --repair` restores it where it can",
                key=key,
            )
        return data

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key), **self._sse_c_args())
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return False
            raise self._error("check", key, exc) from exc
        return True

    def list(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for entry in page.get("Contents", []):
                    yield entry["Key"][len(self.prefix) :]
        except Exception as exc:
            raise self._error("list", prefix, exc) from exc

    def list_dated(self, prefix: str) -> Iterator[tuple[str, float]]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for entry in page.get("Contents", []):
                    yield entry["Key"][len(self.prefix) :], entry["LastModified"].timestamp()
        except Exception as exc:
            raise self._error("list", prefix, exc) from exc

    def delete(self, key: str) -> None:
        # In a versioned bucket (every Object Lock bucket is one) a plain DELETE only hides the
        # object behind a delete marker; deleting means removing each version, which a lock refuses.
        object_key = self._key(key)
        versions = self._versions(object_key)
        try:
            if not versions:
                self.client.delete_object(Bucket=self.bucket, Key=object_key)
            for version_id in versions:
                self.client.delete_object(Bucket=self.bucket, Key=object_key, VersionId=version_id)
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404", "NoSuchVersion"):
                return
            if _code(exc) == "AccessDenied" and versions:
                raise StorageError(self._locked_message(key, versions), key=key) from exc
            raise self._error("delete", key, exc) from exc

    def _versions(self, object_key: str) -> tuple[str, ...]:
        """Version ids of the key (delete markers included); empty for unversioned buckets."""
        found: builtins.list[str] = []
        try:
            paginator = self.client.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=object_key):
                for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    if entry["Key"] == object_key and entry.get("VersionId") not in (None, "null"):
                        found.append(entry["VersionId"])
        except Exception as exc:
            if _code(exc) in ("NotImplemented", "501"):
                return ()
            raise self._error("list versions of", object_key, exc) from exc
        return tuple(found)

    def _locked_message(self, key: str, versions: tuple[str, ...]) -> str:
        for version_id in versions:
            try:
                retention = self.client.get_object_retention(
                    Bucket=self.bucket, Key=self._key(key), VersionId=version_id
                )["Retention"]
            except Exception:  # no retention on this version (a delete marker, say): try the next
                continue
            until = retention["RetainUntilDate"]
            return (
                f"{key} in {self.describe()} is under {retention['Mode']} retention until "
                f"{until:%Y-%m-%d %H:%M} UTC: the store refuses to delete it before then"
                + (
                    " (an account allowed to bypass governance retention can)"
                    if retention["Mode"] == "GOVERNANCE"
                    else " (compliance retention cannot be shortened by anyone)"
                )
            )
        return f"the store refused to delete {key} in {self.describe()} (access denied: an object lock or a policy)"

    def retain(self, key: str, mode: str, until: datetime) -> None:
        object_key = self._key(key)
        try:
            current = self.client.get_object_retention(Bucket=self.bucket, Key=object_key)["Retention"]
            if current.get("Mode") == "COMPLIANCE" or current["RetainUntilDate"] >= until:
                return  # retention only ever grows; compliance may not be changed at all
        except Exception as exc:
            if _code(exc) not in ("ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration", "404"):
                if _code(exc) == "InvalidRequest":
                    raise self._no_lock() from exc
                raise self._error("read the retention of", key, exc) from exc
        try:
            self.client.put_object_retention(
                Bucket=self.bucket, Key=object_key, Retention={"Mode": mode, "RetainUntilDate": until}
            )
        except Exception as exc:
            if _code(exc) == "InvalidRequest":
                raise self._no_lock() from exc
            raise self._error("set the retention of", key, exc) from exc

    def _no_lock(self) -> ConfigError:
        return ConfigError(
            f"bucket {self.bucket!r} has no Object Lock; create a bucket with Object Lock enabled "
            "to keep versions under retention"
        )

    def supports_retention(self) -> bool:
        try:
            config = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except Exception:
            return False
        return bool(config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled")

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    # -- helpers -------------------------------------------------------------------------------
    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _sse_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.options.sse:
            args["ServerSideEncryption"] = self.options.sse
            if self.options.sse == "aws:kms" and self.options.kms_key_id:
                args["SSEKMSKeyId"] = self.options.kms_key_id
        return args | self._sse_c_args()

    def _sse_c_args(self) -> dict[str, Any]:
        if self.options.sse_c_key is None:
            return {}
        return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": self.options.sse_c_key}

    def _put_args(self, key: str, data: bytes) -> dict[str, Any]:
        return {
            "Bucket": self.bucket,
            "Key": self._key(key),
            "Metadata": {_SHA_META: hashlib.sha256(data).hexdigest()},
            **self._sse_args(),
        }

    def _upload(self, key: str, data: bytes) -> None:
        args = self._put_args(key, data)
        bucket, object_key = args.pop("Bucket"), args.pop("Key")
        try:
            self.client.upload_fileobj(io.BytesIO(data), bucket, object_key, ExtraArgs=args, Config=self._transfer)
        except Exception as exc:
            raise self._error("write", key, exc) from exc

    def _error(self, action: str, key: str, exc: Exception) -> StorageError:
        code = _code(exc)
        hint = {
            "AccessDenied": "check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE) "
            "and that they may use this bucket",
            "InvalidAccessKeyId": "the access key is unknown to the store; check AWS_ACCESS_KEY_ID",
            "SignatureDoesNotMatch": "the secret key is wrong; check AWS_SECRET_ACCESS_KEY",
            "NoSuchBucket": f"create the bucket {self.bucket!r} first, or fix CAIRN_STORE",
        }.get(code or "", "check AWS_ENDPOINT_URL, the network and the store's health")
        text = str(exc).lower()
        if "ssecustomer" in text or "customer provided key" in text or "customer-provided key" in text:
            hint = "the object is encrypted with a customer key (SSE-C): set the same CAIRN_S3_SSE_C_KEY_FILE"
        if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
            hint = "no S3 credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
        return StorageError(f"cannot {action} {key} in {self.describe()}: {exc}; {hint}", key=key)


def _code(exc: Exception) -> str | None:
    """The S3 error code of a botocore ClientError (``NoSuchKey``, ``404``...), else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def _client(options: S3Options) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:  # pragma: no cover - boto3 is a dependency
        raise ConfigError("the S3 vault needs boto3; reinstall cairn") from exc
    # botocore waits 60 s for a connection and for each read by default: a store that is down or stalled would hold
    # a request (and a worker) for minutes. Bounded, the caller gets a StorageError within a few timeouts.
    config = Config(
        connect_timeout=min(options.timeout_s, 5.0),
        read_timeout=options.timeout_s,
        retries={"max_attempts": options.max_attempts, "mode": "standard"},
        s3={"addressing_style": options.addressing_style},
        max_pool_connections=32,
    )
    return boto3.session.Session().client("s3", config=config, verify=options.verify)
