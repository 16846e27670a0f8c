"""Reading what a key may see: one cited passage, or a document version's text, from its chunk file.

Access is checked by `Cairn.document` (the key's role and grants, then the document's tenant and ACL:
a document the key may not see is not found, like one that does not exist); the text then comes from
the version's chunk file in the vault, the same text the index holds and citations quote.
"""

from __future__ import annotations

from dataclasses import dataclass

from cairn.auth import Principal
from cairn.core import Cairn
from cairn.errors import NotFound
from cairn.models import Chunk, DocumentInfo, Location

__all__ = ["VersionText", "read_passage", "read_version"]

# Overlap between consecutive chunks is whole sentences; shorter matches are coincidence, not overlap.
_MIN_OVERLAP_CHARS = 8


@dataclass(frozen=True)
class VersionText:
    """The chunks of one document version, as the key may read them."""

    document: DocumentInfo
    collection: str
    version: int
    chunks: list[Chunk]

    def text(self) -> str:
        """The version's text in order, overlaps between chunks removed; a ``[section]`` line where a section
        begins whose text does not open with its heading (a slide, a sheet, an archive member)."""
        parts: list[str] = []
        previous: Chunk | None = None
        for chunk in self.chunks:
            section = _section(chunk.location)
            body = chunk.text
            if previous is not None and section == _section(previous.location):
                body = _after_overlap(previous.text, body)
            elif section.label and not _opens_with_heading(body, section):
                parts.append(f"[{section.label}]")
            if body.strip():
                parts.append(body.strip())
            previous = chunk
        return "\n\n".join(parts)


def read_version(
    cairn: Cairn, doc: str, *, version: int | None, collection: str | None, principal: Principal | None
) -> VersionText:
    """The chunks of a version of *doc* (an id or a source; default: the live version) that *principal* may see."""
    info = cairn.document(doc, collection=collection, principal=principal)
    name = collection or cairn.settings.default_collection
    number = version if version is not None else (info.version or max((v.version for v in info.versions), default=0))
    record = cairn.catalog.document(name, info.doc_id)
    chosen = next((v for v in record.versions if v.version == number), None) if record is not None else None
    if chosen is None:
        kept = ", ".join(str(v.version) for v in info.versions) or "none"
        raise NotFound(f"document {info.doc_id!r} has no version {number}; versions kept: {kept}")
    chunks, _ = cairn.vault.read_chunks(chosen.chunks_key, doc_id=info.doc_id, version=number)
    if principal is not None:  # reads made for a key are audited, as downloads are
        cairn._record(principal, "document.get", collection=name, documents=[info.doc_id], detail="mcp")
    return VersionText(info, name, number, sorted(chunks, key=lambda c: c.ordinal))


def read_passage(
    cairn: Cairn,
    doc: str,
    chunk_id: str,
    *,
    version: int | None,
    collection: str | None,
    principal: Principal | None,
) -> tuple[VersionText, Chunk]:
    """The passage *chunk_id* of a version of *doc*, as a citation or a hit names it."""
    read = read_version(cairn, doc, version=version, collection=collection, principal=principal)
    found = next((c for c in read.chunks if c.chunk_id == chunk_id), None)
    if found is None:
        raise NotFound(
            f"version {read.version} of document {read.document.doc_id!r} has no passage {chunk_id[:64]!r}; "
            "pass the doc_id, version and chunk_id exactly as a search hit or citation gives them"
        )
    return read, found


def _section(location: Location) -> Location:
    """The part of a location that names a section (lines, rows, pages and times move within one)."""
    return Location(
        member=location.member, sheet=location.sheet, slide=location.slide, heading_path=location.heading_path
    )


def _opens_with_heading(text: str, section: Location) -> bool:
    """Whether *text* begins with its section's innermost heading (a Markdown or HTML chunk does)."""
    return bool(section.heading_path) and text.lstrip().startswith(section.heading_path[-1])


def _after_overlap(previous: str, text: str) -> str:
    """*text* without the sentences it repeats from the end of *previous* (chunks of a section overlap)."""
    probe = text[:_MIN_OVERLAP_CHARS]
    if len(probe) < _MIN_OVERLAP_CHARS:
        return text
    start = previous.find(probe)
    while start != -1:
        tail = previous[start:]
        if text.startswith(tail):  # the earliest match is the longest overlap
            return text[len(tail) :]
        start = previous.find(probe, start + 1)
    return text
