"""The per-collection JSON manifest that cairn kept before the catalog (read only, to migrate it).

Until the SQL catalog (`cairn.catalog`), each collection's documents, versions and live pointers
were one JSON file in the vault, ``collections/<c>/manifest.json``. A vault written then is
imported into the catalog on first start (`cairn.catalog.legacy`); nothing writes manifests now.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from cairn.catalog.records import DocumentRecord, Retention, RowSet, VersionRecord

__all__ = ["DocumentRecord", "Manifest", "Retention", "RowSet", "VersionRecord"]


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
