"""Client-side envelope encryption: ciphertext at rest, the right key to read, tampering detected."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from cairn import Cairn, Settings
from cairn.errors import ConfigError, IntegrityError
from cairn.vault import LocalDirStore
from cairn.vault.envelope import EnvelopeStore, MasterKey, key_from_file, key_from_text
from cairn.vault.factory import open_store

SECRET = b"Salary bands for 2027: principal engineer 180k"


@pytest.fixture
def plain(tmp_path: Path) -> LocalDirStore:
    return LocalDirStore(tmp_path / "vault")


def test_stored_bytes_are_not_the_plaintext(plain: LocalDirStore) -> None:
    """What reaches the backend is ciphertext: no fragment of the plaintext is visible."""
    sealed = EnvelopeStore(plain, MasterKey(os.urandom(32)))
    sealed.put("blobs/aa/x", SECRET)

    stored = plain.get("blobs/aa/x")
    assert b"Salary" not in stored
    assert b"180k" not in stored
    assert sealed.get("blobs/aa/x") == SECRET


def test_each_write_uses_a_fresh_data_key_and_nonce(plain: LocalDirStore) -> None:
    """The same plaintext sealed twice gives different ciphertexts."""
    sealed = EnvelopeStore(plain, MasterKey(os.urandom(32)))
    sealed.put("a", SECRET)
    sealed.put("b", SECRET)
    assert plain.get("a") != plain.get("b")


def test_reading_without_the_key_fails_clearly(plain: LocalDirStore) -> None:
    """A vault written with a key, opened without one, says it is encrypted and which setting to set."""
    EnvelopeStore(plain, MasterKey(os.urandom(32))).put("m", SECRET)

    with pytest.raises(ConfigError, match=r"encrypted.*CAIRN_ENCRYPTION_KEY"):
        EnvelopeStore(plain, None).get("m")


def test_reading_with_another_key_fails_clearly(plain: LocalDirStore) -> None:
    """A different master key is named as the problem, not reported as corruption."""
    EnvelopeStore(plain, MasterKey(os.urandom(32))).put("m", SECRET)

    with pytest.raises(ConfigError, match="different key"):
        EnvelopeStore(plain, MasterKey(os.urandom(32))).get("m")


def test_tampered_or_moved_ciphertext_fails_authentication(plain: LocalDirStore) -> None:
    """A flipped bit, or ciphertext copied under another key name, is refused as IntegrityError."""
    sealed = EnvelopeStore(plain, MasterKey(os.urandom(32)))
    sealed.put("one", SECRET)
    sealed.put("two", b"other")
    stored = bytearray(plain.get("one"))
    stored[-1] ^= 0x01
    plain.put("one", bytes(stored))
    with pytest.raises(IntegrityError, match="altered"):
        sealed.get("one")

    plain.put("moved", plain.get("two"))
    with pytest.raises(IntegrityError, match="altered, or moved"):
        sealed.get("moved")


def test_plaintext_objects_in_a_sealed_vault_are_refused(plain: LocalDirStore) -> None:
    """An object placed without encryption is not served by a vault that encrypts everything."""
    plain.put("planted", b"not encrypted")
    with pytest.raises(IntegrityError, match="not encrypted"):
        EnvelopeStore(plain, MasterKey(os.urandom(32))).get("planted")


def test_keys_load_from_raw_base64_and_hex_and_bad_keys_are_named(tmp_path: Path) -> None:
    """A key file may hold 32 raw bytes, base64 or hex; anything else is a ConfigError saying how to make one."""
    key = os.urandom(32)
    for name, content in [("raw", key), ("b64", base64.b64encode(key) + b"\n"), ("hex", key.hex().encode())]:
        (tmp_path / name).write_bytes(content)
        assert key_from_file(tmp_path / name) == key
    with pytest.raises(ConfigError, match="32-byte key"):
        key_from_text("c2hvcnQ=", source="CAIRN_ENCRYPTION_KEY")
    with pytest.raises(ConfigError, match="cannot read the key file"):
        key_from_file(tmp_path / "missing")
    assert "redacted" in repr(MasterKey(key))


def test_an_encrypted_local_vault_end_to_end_keeps_documents_unreadable_at_rest(tmp_path: Path) -> None:
    """With CAIRN_ENCRYPTION_KEY set, no vault file holds the document's text, and the vault still opens."""
    key = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(home=tmp_path / "home", encryption_key=key)
    store = open_store(settings)
    store.put("collections/c/manifest.json", b'{"secret": "' + SECRET + b'"}')

    for path in (tmp_path / "home" / "vault").rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_bytes()
    assert SECRET in open_store(settings).get("collections/c/manifest.json")
    with pytest.raises(ConfigError, match="encrypted"):
        open_store(Settings(home=tmp_path / "home")).get("collections/c/manifest.json")
    with pytest.raises(ConfigError):
        Cairn(Settings(home=tmp_path / "home", encryption_key="not-a-key")).vault.list_collections()
