"""The per-collection manifest: which documents a collection holds and which version is live.

The manifest is the collection's source of truth for readers. A document version's rows may
exist in the index before or after the version is live; readers exclude those rows using
``pending`` (written, not yet live) and ``retired`` (replaced, not yet deleted), so a reader
sees exactly one version of each document at any moment.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["DocumentRecord", "Manifest", "Retention", "RowSet", "VersionRecord"]


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
    doc_id: str
    source: str
    tenant: str = "default"
    allowed: list[str] = Field(default_factory=lambda: ["*"])
    live: int | None = None
    versions: list[VersionRecord] = Field(default_factory=list)

    def live_version(self) -> VersionRecord | None:
        return next((v for v in self.versions if v.version == self.live), None)

    def next_version(self) -> int:
        return max((v.version for v in self.versions), default=0) + 1


class RowSet(BaseModel):
    """The index rows of one document version."""

    model_config = {"frozen": True}

    doc_id: str
    version: int


class Retention(BaseModel):
    """Object-lock retention for a collection's stored versions (original bytes and chunk files)."""

    mode: Literal["GOVERNANCE", "COMPLIANCE"]
    days: int = Field(ge=1, le=36_500)


class Manifest(BaseModel):
    """A collection: its documents and which version of each is live, and where its index is.

    ``generation`` counts re-indexes: each builds a new engine collection (``index_name``) beside
    the old one, and publishing the manifest that names it switches every reader at once.
    """

    collection: str
    embed_model: str
    dim: int
    generation: int = 0
    retention: Retention | None = None
    created_at: float = Field(default_factory=time.time)
    documents: dict[str, DocumentRecord] = Field(default_factory=dict)
    pending: list[RowSet] = Field(default_factory=list)
    retired: list[RowSet] = Field(default_factory=list)

    @property
    def index_name(self) -> str:
        """The engine collection of this generation (``G`` cannot occur in collection names)."""
        return self.collection if self.generation == 0 else f"{self.collection}_G{self.generation}"

    def live_documents(self) -> list[DocumentRecord]:
        return [doc for doc in self.documents.values() if doc.live is not None]

    def hidden_rows(self) -> list[RowSet]:
        """Row sets in the index that readers must not see right now."""
        return [*self.pending, *self.retired]
