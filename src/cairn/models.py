"""The domain records that flow through cairn: elements, chunks, hits, answers and reports.

These are the public result types of the `Cairn` API; the CLI's and (later) the HTTP API's JSON
are exactly their `model_dump()`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, computed_field


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _span(unit: str, start: int, end: int | None) -> str:
    end = start if end is None else end
    return f"{unit} {start}" if end == start else f"{unit}s {start}–{end}"


class Location(BaseModel):
    """Where a piece of text sits in its document, in the terms that document has.

    Pages, slides, rows and lines are 1-based and inclusive; ``row_start`` is the row number as
    the spreadsheet or CSV shows it (the header row is row 1). Times are seconds from the start of
    a recording. The heading path runs from the outermost heading (or ticket, sheet, class...) to
    the innermost one that governs the text. ``member`` names the file inside an archive or the
    attachment of an email the text came from, nested members joined by ``/``.
    """

    model_config = ConfigDict(frozen=True)

    member: str | None = None
    page: int | None = None
    page_end: int | None = None
    slide: int | None = None
    sheet: str | None = None
    heading_path: tuple[str, ...] = ()
    line_start: int | None = None
    line_end: int | None = None
    row_start: int | None = None
    row_end: int | None = None
    time_start: float | None = None
    time_end: float | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label(self) -> str:
        """A short human form: ``p. 3``, ``Setup › Install``, ``lines 10–24``, ``00:03:12``."""
        parts: list[str] = []
        if self.member:
            parts.append(self.member)
        if self.sheet:
            parts.append(f"sheet {self.sheet}")
        if self.slide is not None:
            parts.append(f"slide {self.slide}")
        if self.page is not None:
            if self.page_end is not None and self.page_end != self.page:
                parts.append(f"pp. {self.page}–{self.page_end}")
            else:
                parts.append(f"p. {self.page}")
        if self.heading_path:
            parts.append(" › ".join(self.heading_path))
        if self.row_start is not None:
            parts.append(_span("row", self.row_start, self.row_end))
        if self.line_start is not None:
            parts.append(_span("line", self.line_start, self.line_end))
        if self.time_start is not None:
            clock = _clock(self.time_start)
            if self.time_end is not None and _clock(self.time_end) != clock:
                clock = f"{clock}–{_clock(self.time_end)}"
            parts.append(clock)
        return ", ".join(parts)


class Element(BaseModel):
    """One structural unit of parsed text (a paragraph, list item, table row, ticket, cue...).

    ``metadata`` holds fields of the unit that are not running text (a ticket's status, an
    email's sender): they travel with every chunk made from the element and come back with hits.
    """

    model_config = ConfigDict(frozen=True)

    text: str
    location: Location
    kind: str = "paragraph"
    metadata: dict[str, str] = Field(default_factory=dict)


class Chunk(BaseModel):
    """A token-bounded span of a document version: the unit that is embedded and indexed."""

    chunk_id: str
    doc_id: str
    version: int
    ordinal: int
    text: str
    location: Location
    token_count: int
    metadata: dict[str, str] = Field(default_factory=dict)


class FailedFile(BaseModel):
    path: str
    error: str


class FileWarning(BaseModel):
    """Local damage in a file that was ingested all the same: ``message`` says what was left out and where.

    ``path`` names the file, or the member of an archive or email (``mail.zip › notes.csv``).
    """

    path: str
    message: str


class IngestReport(BaseModel):
    """The outcome of one ingest run.

    ``formats`` counts the files ingested per format (``{"PDF": 3, "DOCX": 1}``). ``skipped``
    lists files (and archive or email members) of kinds cairn does not index; ``failed`` lists
    those that could not be read or parsed, each with the reason. ``warnings`` lists local damage
    in files that were ingested all the same (a cue with impossible times, a JSON Lines line that
    is not JSON): what was left out or repaired, and where. ``seconds`` is the time spent
    per stage; ``parse`` adds up the parser processes' time, which runs in parallel with the
    rest, and ``parse_wait`` is how long the pipeline waited for a parser.
    """

    collection: str
    files: int = 0
    ingested: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks: int = 0
    tokens: int = 0
    formats: dict[str, int] = Field(default_factory=dict)
    skipped: list[FailedFile] = Field(default_factory=list)
    failed: list[FailedFile] = Field(default_factory=list)
    warnings: list[FileWarning] = Field(default_factory=list)
    seconds: dict[str, float] = Field(default_factory=dict)


class SearchHit(BaseModel):
    doc_id: str
    source: str
    chunk_id: str
    score: float
    text: str
    location: Location
    version: int
    metadata: dict[str, str] = Field(default_factory=dict)


class SearchResult(BaseModel):
    hits: list[SearchHit]
    warnings: list[str] = Field(default_factory=list, description="Steps that were skipped, and why.")


class Citation(BaseModel):
    """A passage an answer relies on, resolvable to the exact document version it came from."""

    source: str
    location: Location
    text: str
    doc_id: str
    chunk_id: str
    version: int
    metadata: dict[str, str] = Field(default_factory=dict)
    support: float = Field(
        default=0.0, ge=0.0, le=1.0, description="How well the passage supports the sentences citing it (0-1)."
    )
    supported: bool = Field(default=False, description="Every sentence citing the passage is supported by it.")

    @classmethod
    def of(cls, hit: SearchHit) -> Citation:
        """The citation of a retrieved passage (support is set when the answer is verified)."""
        return cls(
            source=hit.source,
            location=hit.location,
            text=hit.text,
            doc_id=hit.doc_id,
            chunk_id=hit.chunk_id,
            version=hit.version,
            metadata=hit.metadata,
        )


class Answer(BaseModel):
    """An answer whose sentences cite ``citations`` as ``[n]`` (n counts from 1).

    ``generator`` is ``extractive`` or the LLM's model name; ``warnings`` name citations that did not
    support their sentence and steps that were skipped (a reranker that is not installed).
    """

    answer: str
    citations: list[Citation]
    generator: str = "extractive"
    warnings: list[str] = Field(default_factory=list)


class DocumentVersionInfo(BaseModel):
    version: int
    sha256: str
    size: int
    mime: str = ""
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
    engine_version: str = ""
    features: list[str] = Field(default_factory=list)
    retention: str | None = None
