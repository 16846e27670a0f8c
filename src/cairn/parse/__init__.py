"""Turn a document's bytes into `Element`s: text with the location it came from.

    parse_document(data, path=..., mime=None) -> list[Element]
    parse_file(data, path=..., limits=...) -> ParsedDocument   (elements + member problems)

The media type is detected by content (`detect_mime`) unless given, then the parser of its
`Format` runs. Containers (ZIP archives, emails) parse their members recursively through a
`ParseContext`, whose limits bound nesting, member count and expanded size.

Local damage does not fail a file: parsers keep what they can read and report what they left out
(`cairn.parse.salvage`); those warnings come back in `ParsedDocument.warnings`. A file whose every
part is damaged fails with the first of them.

Every failure is a `ParseError` (or its subclasses `UnsupportedFormat`, `LimitExceeded`) whose
``path`` attribute names the file; messages do not repeat the path, so callers can show both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cairn.errors import LimitExceeded, ParseError, UnsupportedFormat
from cairn.models import Element, FailedFile, FileWarning

from .context import ParseContext, ParseLimits
from .detect import detect_mime
from .formats import FORMATS, SUPPORTED_FORMATS, Format, by_mime
from .salvage import collecting, summarised

__all__ = [
    "FORMATS",
    "SUPPORTED_FORMATS",
    "Format",
    "ParseContext",
    "ParseLimits",
    "ParsedDocument",
    "detect_mime",
    "format_of",
    "parse_document",
    "parse_file",
]

_EMPTY = "empty file: nothing to index"


@dataclass
class ParsedDocument:
    """A parsed file: its type, its elements, the members (of an archive or email) left out, and
    the local damage its parsers worked around."""

    mime: str
    format: str
    elements: list[Element]
    skipped: list[FailedFile] = field(default_factory=list)
    failed: list[FailedFile] = field(default_factory=list)
    warnings: list[FileWarning] = field(default_factory=list)


def format_of(mime: str, path: str = "") -> Format:
    """The `Format` for a media type (parameters such as ``; charset=utf-8`` are ignored)."""
    found = by_mime(mime)
    if found is None:
        raise UnsupportedFormat(
            f"no parser for media type {mime!r}; supported formats: {SUPPORTED_FORMATS}",
            path=path,
        )
    return found


def parse_document(
    data: bytes, *, path: str, mime: str | None = None, context: ParseContext | None = None
) -> list[Element]:
    """Parse ``data`` (the content of the file at ``path``) into elements in document order.

    ``context`` is given by container parsers for their members; top-level callers leave it out.
    Local damage the parser worked around is added to ``context.warnings`` under ``path``.

    Raises:
        UnsupportedFormat: the file is binary or of a type no parser handles.
        LimitExceeded: the file broke a limit (an archive or image bomb, nesting too deep).
        ParseError: the file is empty, has no extractable text (or none that is not damaged), or
            its parser failed; the original exception, if any, is chained as ``__cause__``.
    """
    if not data.strip():
        raise ParseError(_EMPTY, path=path)
    document_format = format_of(mime if mime is not None else detect_mime(path, data), path)
    context = context if context is not None else ParseContext(path=path)
    try:
        with collecting() as damage:
            elements = document_format.parse(data, context)
    except ParseError as exc:
        if exc.path is None:
            exc.path = path
        raise
    except (MemoryError, RecursionError) as exc:
        raise LimitExceeded(
            f"parsing needed more {'memory' if isinstance(exc, MemoryError) else 'nesting depth'} than allowed; "
            "the file is too large or too deeply nested to index as it is",
            path=path,
        ) from exc
    except Exception as exc:
        # Parsers are third-party code on untrusted input: anything they raise means "this
        # document could not be parsed", and callers handle that per file.
        raise ParseError(
            f"could not parse the document ({type(exc).__name__}: {exc}); "
            "check that the file is not damaged and matches its extension",
            path=path,
        ) from exc
    if not elements and damage:
        more = f" (and {len(damage) - 1} more problems)" if len(damage) > 1 else ""
        raise ParseError(f"nothing in the file could be read: {damage[0]}{more}", path=path)
    if not elements:
        raise ParseError(f"{_EMPTY} (it has no visible text)", path=path)
    # dict.fromkeys: a parser may decode the same bytes twice and warn twice about them.
    context.warnings.extend(
        FileWarning(path=path, message=message) for message in summarised(list(dict.fromkeys(damage)))
    )
    return elements


def parse_file(data: bytes, *, path: str, limits: ParseLimits | None = None) -> ParsedDocument:
    """Detect and parse one whole file; members of archives and emails that fail are listed, not fatal,
    and so is local damage parsers worked around.

    Raises the same errors as `parse_document` for the file as a whole.
    """
    mime = detect_mime(path, data)
    context = ParseContext(path=path, limits=limits or ParseLimits())
    elements = parse_document(data, path=path, mime=mime, context=context)
    return ParsedDocument(
        mime=mime,
        format=format_of(mime).name,
        elements=elements,
        skipped=context.skipped,
        failed=context.problems,
        warnings=context.warnings,
    )
