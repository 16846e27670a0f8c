"""The domain records that flow through cairn: elements, chunks, hits, answers and reports.

These are the public result types of the `Cairn` API; the CLI's and (later) the HTTP API's JSON
are exactly their `model_dump()`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, computed_field


class Location(BaseModel):
    """Where a piece of text sits in its document, in the terms that document has.

    PDF pages are 1-based; line numbers are 1-based and inclusive; the heading path runs from
    the outermost heading to the innermost one that governs the text.
    """

    model_config = ConfigDict(frozen=True)

    page: int | None = None
    page_end: int | None = None
    heading_path: tuple[str, ...] = ()
    line_start: int | None = None
    line_end: int | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label(self) -> str:
        """A short human form: ``p. 3``, ``pp. 3–4``, ``Setup › Install``, ``lines 10–24``."""
        parts: list[str] = []
        if self.page is not None:
            if self.page_end is not None and self.page_end != self.page:
                parts.append(f"pp. {self.page}–{self.page_end}")
            else:
                parts.append(f"p. {self.page}")
        if self.heading_path:
            parts.append(" › ".join(self.heading_path))
        if self.line_start is not None:
            end = self.line_end if self.line_end is not None else self.line_start
            parts.append(f"line {self.line_start}" if end == self.line_start else f"lines {self.line_start}–{end}")
        return ", ".join(parts)


class Element(BaseModel):
    """One structural unit of parsed text (a paragraph, list item, table row, heading...)."""

    model_config = ConfigDict(frozen=True)

    text: str
    location: Location
    kind: str = "paragraph"


class Chunk(BaseModel):
    """A token-bounded span of a document version: the unit that is embedded and indexed."""

    chunk_id: str
    doc_id: str
    version: int
    ordinal: int
    text: str
    location: Location
    token_count: int


class FailedFile(BaseModel):
    path: str
    error: str


class IngestReport(BaseModel):
    collection: str
    files: int = 0
    ingested: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks: int = 0
    failed: list[FailedFile] = Field(default_factory=list)


class SearchHit(BaseModel):
    doc_id: str
    source: str
    chunk_id: str
    score: float
    text: str
    location: Location
    version: int


class SearchResult(BaseModel):
    hits: list[SearchHit]


class Citation(BaseModel):
    """A passage an answer relies on, resolvable to the exact document version it came from."""

    source: str
    location: Location
    text: str
    doc_id: str
    chunk_id: str
    version: int


class Answer(BaseModel):
    answer: str
    citations: list[Citation]


class DocumentVersionInfo(BaseModel):
    version: int
    sha256: str
    size: int
    created_at: float
    chunks: int


class DocumentInfo(BaseModel):
    doc_id: str
    source: str
    mime: str
    tenant: str
    allowed: list[str]
    version: int
    chunks: int
    versions: list[DocumentVersionInfo]


class CollectionInfo(BaseModel):
    name: str
    documents: int
    chunks: int
    rows: int
    embed_model: str
    dim: int
    engine: str
