"""Build the vault's object store from `Settings`: a directory or an S3 bucket, sealed or not."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.settings import Settings

from .backend import LocalDirStore, ObjectStore
from .envelope import EnvelopeStore, MasterKey, key_from_file, key_from_text

if TYPE_CHECKING:
    from .s3 import S3Options

__all__ = ["open_store", "s3_client"]


def _master_key(settings: Settings) -> MasterKey | None:
    if settings.encryption_key_file is not None:
        return MasterKey(key_from_file(settings.encryption_key_file))
    if settings.encryption_key is not None:
        return MasterKey(key_from_text(settings.encryption_key.get_secret_value(), source="CAIRN_ENCRYPTION_KEY"))
    return None


def _s3(settings: Settings, url: str) -> ObjectStore:
    from .s3 import S3Store

    return S3Store(url, s3_options(settings))


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client configured as the vault's (endpoint, TLS, retries, addressing) for another bucket."""
    from .s3 import _client

    return _client(s3_options(settings))


def s3_options(settings: Settings) -> S3Options:
    from .s3 import S3Options

    sse_c_key = key_from_file(settings.s3_sse_c_key_file) if settings.s3_sse_c_key_file is not None else None
    verify: bool | str = settings.s3_verify_tls
    if settings.s3_verify_tls and settings.s3_ca_bundle is not None:
        verify = str(settings.s3_ca_bundle)
    return S3Options(
        addressing_style=settings.s3_addressing_style,
        verify=verify,
        max_attempts=settings.s3_max_attempts,
        timeout_s=settings.s3_timeout_s,
        multipart_threshold=settings.s3_multipart_threshold_mb * 1024 * 1024,
        sse=None if settings.s3_sse == "none" else settings.s3_sse,
        kms_key_id=settings.s3_sse_kms_key_id,
        sse_c_key=sse_c_key,
    )


def open_store(settings: Settings) -> ObjectStore:
    """The vault's store: ``CAIRN_STORE`` (s3:// or a directory) or ``CAIRN_HOME/vault``.

    The store is always wrapped in an `EnvelopeStore`: it seals objects when a master key is
    configured, and otherwise refuses to return objects that were sealed.
    """
    url = settings.store
    inner: ObjectStore
    if url and url.startswith("s3://"):
        inner = _s3(settings, url)
    else:
        inner = LocalDirStore(Path(url).expanduser() if url else settings.vault_dir)
    return EnvelopeStore(inner, _master_key(settings))
