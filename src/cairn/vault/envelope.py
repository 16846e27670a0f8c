"""Client-side envelope encryption (AES-256-GCM) for any object store, local or S3.

Each object gets its own random 256-bit data key; the data is sealed with it (AES-256-GCM, the
object's key as associated data, so a ciphertext moved to another key fails to open), and the
data key is sealed with the vault's master key. The store only ever sees ciphertext; the master
key stays with the cairn process (a key file or ``CAIRN_ENCRYPTION_KEY``).

Layout of a sealed object::

    MAGIC (18 bytes) | key id (8) | nonce (12) | sealed data key (48) | nonce (12) | sealed data

The key id (a hash of the master key) tells a wrong key from tampering. Without a master key
configured, `EnvelopeStore` still recognises sealed objects and refuses them with a clear error
instead of handing ciphertext to the parsers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from cairn.errors import ConfigError, IntegrityError

from .backend import ObjectStore

__all__ = ["EnvelopeStore", "MasterKey", "is_sealed", "key_from_file", "key_from_text"]

MAGIC = b"\x00cairn-envelope-1\x00"
_KEY_ID = 8
_NONCE = 12
_SEALED_KEY = 32 + 16
_HEADER = len(MAGIC) + _KEY_ID + _NONCE + _SEALED_KEY + _NONCE


def is_sealed(data: bytes) -> bool:
    return data.startswith(MAGIC)


def key_from_text(text: str, *, source: str) -> bytes:
    """A 32-byte key written as base64 or hex text (from a key file or the environment)."""
    value = text.strip()
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        try:
            key = bytes.fromhex(value)
        except ValueError:
            key = b""
    if len(key) != 32:
        raise ConfigError(
            f"{source} does not hold a 32-byte key in base64 or hex; "
            "make one with `head -c 32 /dev/urandom | base64 > vault.key`"
        )
    return key


def key_from_file(path: Path) -> bytes:
    """A 32-byte key from a file: the raw bytes, or base64/hex text."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the key file {path}: {exc.strerror}") from exc
    if len(raw) == 32:
        return raw
    return key_from_text(raw.decode("ascii", errors="replace"), source=f"the key file {path}")


class MasterKey:
    """A 256-bit key-encryption key; prints as ``<redacted>``."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigError(
                f"the encryption key must be 32 bytes (256 bits), got {len(key)}; "
                "make one with `head -c 32 /dev/urandom | base64 > vault.key`"
            )
        self._key = key
        self.key_id = hashlib.sha256(b"cairn-key-id" + key).digest()[:_KEY_ID]

    def __repr__(self) -> str:
        return "MasterKey(<redacted>)"

    def seal(self, data: bytes, *, context: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        data_key = AESGCM.generate_key(bit_length=256)
        key_nonce, data_nonce = os.urandom(_NONCE), os.urandom(_NONCE)
        sealed_key = AESGCM(self._key).encrypt(key_nonce, data_key, b"data-key:" + context)
        sealed = AESGCM(data_key).encrypt(data_nonce, data, context)
        return MAGIC + self.key_id + key_nonce + sealed_key + data_nonce + sealed

    def open(self, blob: bytes, *, context: bytes, name: str) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(blob) < _HEADER + 16:
            raise IntegrityError(f"encrypted object {name} is truncated", key=name)
        offset = len(MAGIC)
        key_id = blob[offset : offset + _KEY_ID]
        if key_id != self.key_id:
            raise ConfigError(
                f"object {name} was encrypted with a different key than the one configured; "
                "set CAIRN_ENCRYPTION_KEY_FILE (or CAIRN_ENCRYPTION_KEY) to the vault's key"
            )
        offset += _KEY_ID
        key_nonce = blob[offset : offset + _NONCE]
        offset += _NONCE
        sealed_key = blob[offset : offset + _SEALED_KEY]
        offset += _SEALED_KEY
        data_nonce = blob[offset : offset + _NONCE]
        offset += _NONCE
        try:
            data_key = AESGCM(self._key).decrypt(key_nonce, sealed_key, b"data-key:" + context)
            return AESGCM(data_key).decrypt(data_nonce, blob[offset:], context)
        except InvalidTag as exc:
            raise IntegrityError(
                f"encrypted object {name} fails authentication: it was altered, or moved from another key",
                key=name,
            ) from exc


class EnvelopeStore:
    """An `ObjectStore` that seals every object on the way in and opens it on the way out.

    With ``key=None`` it passes objects through unchanged but refuses to return sealed ones.
    """

    def __init__(self, inner: ObjectStore, key: MasterKey | None) -> None:
        self.inner = inner
        self.key = key

    def put(self, key: str, data: bytes) -> None:
        self.inner.put(key, self._seal(key, data))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self.inner.put_if_absent(key, self._seal(key, data))

    def get(self, key: str) -> bytes:
        data = self.inner.get(key)
        if self.key is None:
            if is_sealed(data):
                raise ConfigError(
                    f"the vault at {self.describe()} is encrypted (object {key}), and no key is configured; "
                    "set CAIRN_ENCRYPTION_KEY_FILE or CAIRN_ENCRYPTION_KEY"
                )
            return data
        if not is_sealed(data):
            raise IntegrityError(
                f"object {key} in {self.describe()} is not encrypted, but this vault encrypts every object: "
                "it was written without the key or placed there by hand",
                key=key,
            )
        return self.key.open(data, context=key.encode(), name=key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list(self, prefix: str) -> Iterator[str]:
        return self.inner.list(prefix)

    def list_dated(self, prefix: str) -> Iterator[tuple[str, float]]:
        return self.inner.list_dated(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def retain(self, key: str, mode: str, until: datetime) -> None:
        self.inner.retain(key, mode, until)

    def supports_retention(self) -> bool:
        return self.inner.supports_retention()

    def describe(self) -> str:
        return self.inner.describe()

    def _seal(self, key: str, data: bytes) -> bytes:
        return data if self.key is None else self.key.seal(data, context=key.encode())
