"""The vault: cairn's system of record in object storage (a local directory or, later, S3)."""

from cairn.vault.backend import LocalDirStore, ObjectStore, check_key
from cairn.vault.manifest import DocumentRecord, Manifest, RowSet, VersionRecord
from cairn.vault.store import EmbeddingCache, Vault, sha256_hex

__all__ = [
    "DocumentRecord",
    "EmbeddingCache",
    "LocalDirStore",
    "Manifest",
    "ObjectStore",
    "RowSet",
    "Vault",
    "VersionRecord",
    "check_key",
    "sha256_hex",
]
