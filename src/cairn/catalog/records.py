"""The catalog's records: collections, documents, their versions and the index rows readers must not see.

These are plain values read from (and written to) the catalog; the catalog's rules about them
(pending and retired row sets, the live pointer, generations) live in `cairn.catalog.sql`.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "CollectionState",
    "DocumentRecord",
    "Publication",
    "PublishOutcome",
    "Retention",
    "RowSet",
    "SourceObject",
    "SourceRecord",
    "VersionDraft",
    "VersionRecord",
]


class VersionRecord(BaseModel):
    """One immutable version of a document: its original bytes and its chunk file."""

    version: int
    sha256: str
    size: int
    mime: str
    created_at: float
    chunks: int
    chunks_key: str


class DocumentRecord(BaseModel):
    """A document of a collection: who may see it, which version is live, and (when asked for) its versions."""

    doc_id: str
    source: str
    tenant: str = "default"
    allowed: list[str] = Field(default_factory=lambda: ["*"])
    live: int | None = None
    versions: list[VersionRecord] = Field(default_factory=list)

    def live_version(self) -> VersionRecord | None:
        return next((v for v in self.versions if v.version == self.live), None)


class RowSet(BaseModel):
    """The index rows of one document version."""

    model_config = {"frozen": True}

    doc_id: str
    version: int


class Retention(BaseModel):
    """Object-lock retention for a collection's stored versions (original bytes and chunk files)."""

    mode: Literal["GOVERNANCE", "COMPLIANCE"]
    days: int = Field(ge=1, le=36_500)


class CollectionState(BaseModel):
    """A collection as readers need it: its model, its index generation and its retention.

    ``generation`` counts re-indexes: each builds a new engine collection (``index_name``) beside
    the old one, and switching the catalog's generation moves every reader at once.
    """

    model_config = {"frozen": True}

    name: str
    embed_model: str
    dim: int
    generation: int = 0
    retention: Retention | None = None
    created_at: float = Field(default_factory=time.time)
    changed_at: float = 0.0  # when a document last went live, changed access or was taken down

    @property
    def index_name(self) -> str:
        """The engine collection of this generation (``G`` cannot occur in collection names)."""
        return self.name if self.generation == 0 else f"{self.name}_G{self.generation}"

    def of_generation(self, generation: int) -> str:
        """The engine collection of another generation of this collection."""
        return self.name if generation == 0 else f"{self.name}_G{generation}"


class VersionDraft(BaseModel):
    """A version a writer is about to store: the catalog gives it its number and holds its rows hidden."""

    doc_id: str
    source: str
    sha256: str
    size: int
    mime: str
    chunks: int
    tenant: str = "default"
    allowed: list[str] | None = None  # None: keep a known document's ACL (a new one gets ["*"])


PublishOutcome = Literal["live", "duplicate", "superseded"]


class Publication(BaseModel):
    """What publishing one reserved version did.

    ``live``: it is now the document's live version. ``duplicate``: another writer made the same
    bytes live first; this version was dropped. ``superseded``: another writer published a newer
    version first; this one is kept in the history but never live.
    """

    doc_id: str
    version: int
    outcome: PublishOutcome


class SourceRecord(BaseModel):
    """A registered source: where its objects are, which collection they go to, and who may see them.

    ``settings`` holds the kind's options (an S3 endpoint, path-style addressing, TLS, the *names*
    of the environment variables that hold credentials, a Git ref, ACL mappings), never a secret.
    ``last_sync`` is the last sync's report; ``next_sync_at`` when the scheduler runs it next.
    """

    name: str
    kind: Literal["directory", "s3", "git"]
    uri: str
    collection: str
    tenant: str = "default"
    allowed: list[str] = Field(default_factory=lambda: ["*"])
    every_s: float | None = None
    settings: dict[str, object] = Field(default_factory=dict)
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    last_sync: dict[str, object] | None = None
    next_sync_at: float | None = None


class SourceObject(BaseModel):
    """What a sync saw of one object of a source, and the document it became.

    ``signature`` digests what the listing says (ETag, size, modified time, version id, mapped
    metadata and ACL); an object whose listing entry has the same signature is unchanged without
    being fetched. ``sha256`` is the content hash of the bytes last ingested.
    """

    key: str
    doc_id: str
    etag: str | None = None
    size: int = 0
    modified: float | None = None
    version_id: str | None = None
    sha256: str = ""
    signature: str | None = None
    synced_at: float = Field(default_factory=time.time)
