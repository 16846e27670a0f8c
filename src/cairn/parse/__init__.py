"""Turn a document's bytes into `Element`s: text with the location it came from.

    parse_document(data, path=..., mime=None) -> list[Element]

The media type is detected (`detect_mime`) unless given, then a parser is looked up in
`PARSERS` (media type → function of the bytes). A new format is one new module with a
``parse_<format>(data: bytes) -> list[Element]`` function and one entry in `PARSERS`.

Every failure is a `ParseError` (or its subclass `UnsupportedFormat`) whose ``path`` attribute
names the file; messages do not repeat the path, so callers can show both side by side.
"""

from __future__ import annotations

from collections.abc import Callable

from cairn.errors import ParseError, UnsupportedFormat
from cairn.models import Element

from .detect import HTML, MARKDOWN, PDF, PLAIN_TEXT, SUPPORTED_FORMATS, detect_mime
from .html import parse_html
from .markdown import parse_markdown
from .pdf import parse_pdf
from .text import parse_text

__all__ = ["PARSERS", "SUPPORTED_MIME_TYPES", "Parser", "detect_mime", "parse_document"]

Parser = Callable[[bytes], list[Element]]

PARSERS: dict[str, Parser] = {
    PLAIN_TEXT: parse_text,
    MARKDOWN: parse_markdown,
    HTML: parse_html,
    PDF: parse_pdf,
}

SUPPORTED_MIME_TYPES: tuple[str, ...] = tuple(PARSERS)

_EMPTY = "empty file: nothing to index"


def _parser_for(mime: str, path: str) -> Parser:
    # Callers may pass a Content-Type header value: "text/html; charset=utf-8".
    essence = mime.split(";", 1)[0].strip().lower()
    parser = PARSERS.get(essence)
    if parser is None:
        raise UnsupportedFormat(
            f"no parser for media type {mime!r}; supported formats: {SUPPORTED_FORMATS}",
            path=path,
        )
    return parser


def parse_document(data: bytes, *, path: str, mime: str | None = None) -> list[Element]:
    """Parse ``data`` (the content of the file at ``path``) into elements in document order.

    Raises:
        UnsupportedFormat: the file is binary or of a type no parser handles.
        ParseError: the file is empty, has no extractable text, or its parser failed; the
            original exception, if any, is chained as ``__cause__``.
    """
    if not data.strip():
        raise ParseError(_EMPTY, path=path)
    parser = _parser_for(mime if mime is not None else detect_mime(path, data), path)
    try:
        elements = parser(data)
    except ParseError as exc:
        if exc.path is None:
            exc.path = path
        raise
    except Exception as exc:
        # Parsers are third-party code on untrusted input: anything they raise means "this
        # document could not be parsed", and callers handle that per file.
        raise ParseError(
            f"could not parse the document ({type(exc).__name__}: {exc}); "
            "check that the file is not damaged and matches its extension",
            path=path,
        ) from exc
    if not elements:
        raise ParseError(f"{_EMPTY} (it has no visible text)", path=path)
    return elements
