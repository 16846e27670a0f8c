"""CAIRN_STORE and the S3/encryption settings turn into the right store, options and errors."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from cairn import Settings
from cairn.errors import ConfigError
from cairn.vault import LocalDirStore
from cairn.vault.envelope import EnvelopeStore
from cairn.vault.factory import open_store
from cairn.vault.s3 import S3Store, parse_s3_url


def test_default_store_is_the_home_vault_directory_unsealed(tmp_path: Path) -> None:
    """Without CAIRN_STORE the vault is CAIRN_HOME/vault, wrapped without a key."""
    store = open_store(Settings(home=tmp_path))
    assert isinstance(store, EnvelopeStore)
    assert store.key is None
    assert isinstance(store.inner, LocalDirStore)
    assert store.describe() == str((tmp_path / "vault").resolve())


def test_s3_settings_become_store_options(tmp_path: Path) -> None:
    """Bucket, prefix, path style, CA bundle, retries, multipart size and SSE-C key reach the S3 store."""
    key_file = tmp_path / "sse-c.key"
    key_file.write_bytes(base64.b64encode(os.urandom(32)))
    ca = tmp_path / "ca.pem"
    ca.write_text("not used until a request is made")
    settings = Settings(
        home=tmp_path,
        store="s3://vault-bucket/team/a/",
        s3_addressing_style="path",
        s3_ca_bundle=ca,
        s3_max_attempts=7,
        s3_multipart_threshold_mb=32,
        s3_sse="AES256",
        s3_sse_c_key_file=key_file,
        encryption_key=base64.b64encode(os.urandom(32)).decode(),
    )
    store = open_store(settings)
    assert isinstance(store, EnvelopeStore)
    assert store.key is not None
    inner = store.inner
    assert isinstance(inner, S3Store)
    assert (inner.bucket, inner.prefix) == ("vault-bucket", "team/a/")
    assert inner.options.addressing_style == "path"
    assert inner.options.verify == str(ca)
    assert inner.options.max_attempts == 7
    assert inner.options.multipart_threshold == 32 * 1024 * 1024
    assert inner.options.sse == "AES256"
    assert inner.options.sse_c_key is not None
    assert len(inner.options.sse_c_key) == 32
    assert inner.describe() == "s3://vault-bucket/team/a/"


def test_tls_verification_can_be_turned_off_explicitly(tmp_path: Path) -> None:
    """s3_verify_tls=False disables verification (for a lab store with a self-signed certificate)."""
    store = open_store(Settings(home=tmp_path, store="s3://b", s3_verify_tls=False))
    assert isinstance(store, EnvelopeStore)
    assert isinstance(store.inner, S3Store)
    assert store.inner.options.verify is False


@pytest.mark.parametrize("url", ["s3://", "http://bucket", "s3:///prefix"])
def test_malformed_store_urls_are_config_errors(url: str) -> None:
    """An s3 URL without a bucket is refused with the setting's name."""
    with pytest.raises(ConfigError, match="CAIRN_STORE"):
        parse_s3_url(url)


def test_contradictory_encryption_settings_are_refused(tmp_path: Path) -> None:
    """Two master keys, or a KMS key without SSE-KMS, fail at construction."""
    with pytest.raises(ValidationError, match="not both"):
        Settings(home=tmp_path, encryption_key="x", encryption_key_file=tmp_path / "k")
    with pytest.raises(ValidationError, match="aws:kms"):
        Settings(home=tmp_path, s3_sse_kms_key_id="key-1")
