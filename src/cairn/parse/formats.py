"""The formats cairn reads: media type, short name, file extensions and parser of each.

One table drives detection by extension, the list of supported formats in error messages, the
per-format counts of the ingest report and dispatch to parsers. Parser modules are imported on
first use, so ``import cairn`` does not load python-docx, Pillow or tree-sitter.

A new format is one parser module and one `Format` row here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast

from cairn.models import Element

from .context import ParseContext

__all__ = ["FORMATS", "SUPPORTED_FORMATS", "Format", "by_extension", "by_mime"]

ContainerParser = Callable[[bytes, ParseContext], list[Element]]

# Source-code languages: media type suffix, display name, extensions (grammars in parse/code.py).
_LANGUAGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("python", "Python", (".py", ".pyi")),
    ("javascript", "JavaScript", (".js", ".mjs", ".cjs", ".jsx")),
    ("typescript", "TypeScript", (".ts", ".mts", ".cts")),
    ("tsx", "TSX", (".tsx",)),
    ("go", "Go", (".go",)),
    ("rust", "Rust", (".rs",)),
    ("java", "Java", (".java",)),
    ("c", "C", (".c", ".h")),
    ("cpp", "C++", (".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx")),
)


@dataclass(frozen=True)
class Format:
    """A document format: ``parser`` is ``"module:function"`` below ``cairn.parse``.

    Leaf parsers take the bytes (plus ``options`` as keyword arguments); container parsers
    (archives, emails) also take the `ParseContext`, to parse their members. ``binary`` formats
    are recognised by signature; the others are text, which detection checks the content is.
    """

    mime: str
    name: str
    extensions: tuple[str, ...]
    parser: str
    container: bool = False
    binary: bool = False
    options: dict[str, str] = field(default_factory=dict)

    def parse(self, data: bytes, context: ParseContext) -> list[Element]:
        function = _load(self.parser)
        if self.container:
            return cast(ContainerParser, function)(data, context)
        return cast(list[Element], function(data, **self.options))


@cache
def _load(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return cast(Callable[..., Any], getattr(importlib.import_module(f"cairn.parse.{module}"), name))


_OOXML = "application/vnd.openxmlformats-officedocument"
DOCX = f"{_OOXML}.wordprocessingml.document"
PPTX = f"{_OOXML}.presentationml.presentation"
XLSX = f"{_OOXML}.spreadsheetml.sheet"

FORMATS: tuple[Format, ...] = (
    Format("text/plain", "text", (".txt", ".text", ".rst", ".log"), "text:parse_text"),
    Format("text/markdown", "Markdown", (".md", ".markdown"), "markdown:parse_markdown"),
    Format("text/html", "HTML", (".html", ".htm", ".xhtml"), "html:parse_html"),
    Format("application/pdf", "PDF", (".pdf",), "pdf:parse_pdf", binary=True),
    Format(DOCX, "DOCX", (".docx",), "docx:parse_docx", binary=True),
    Format(PPTX, "PPTX", (".pptx",), "pptx:parse_pptx", binary=True),
    Format(XLSX, "XLSX", (".xlsx", ".xlsm"), "xlsx:parse_xlsx", binary=True),
    Format("text/csv", "CSV", (".csv",), "tabular:parse_csv"),
    Format("text/tab-separated-values", "TSV", (".tsv", ".tab"), "tabular:parse_tsv"),
    Format("application/json", "JSON", (".json",), "jsondocs:parse_json"),
    Format("application/x-ndjson", "JSONL", (".jsonl", ".ndjson"), "jsondocs:parse_jsonl"),
    Format("message/rfc822", "email", (".eml",), "mail:parse_eml", container=True),
    Format("application/mbox", "mbox", (".mbox",), "mail:parse_mbox", container=True),
    Format("text/vtt", "WebVTT", (".vtt",), "transcripts:parse_vtt"),
    Format("application/x-subrip", "SRT", (".srt",), "transcripts:parse_srt"),
    Format("image/png", "PNG", (".png",), "ocr:parse_image", binary=True),
    Format("image/jpeg", "JPEG", (".jpg", ".jpeg"), "ocr:parse_image", binary=True),
    Format("image/tiff", "TIFF", (".tif", ".tiff"), "ocr:parse_image", binary=True),
    Format("application/zip", "ZIP", (".zip",), "archive:parse_zip", container=True, binary=True),
    *(
        Format(f"text/x-{language}", name, extensions, "code:parse_code", options={"language": language})
        for language, name, extensions in _LANGUAGES
    ),
)

_BY_MIME = {f.mime: f for f in FORMATS}
_BY_EXTENSION = {extension: f for f in FORMATS for extension in f.extensions}

SUPPORTED_FORMATS = (
    "plain text, Markdown, HTML, PDF (scanned pages via OCR), DOCX, PPTX, XLSX, CSV/TSV, JSON/JSONL "
    "(tickets, Whisper transcripts), email (.eml, .mbox), WebVTT/SRT subtitles, PNG/JPEG/TIFF "
    "images (OCR), ZIP archives and source code (" + ", ".join(name for _, name, _ in _LANGUAGES) + ")"
)


def by_mime(mime: str) -> Format | None:
    """The format of a media type; parameters (``; charset=utf-8``) and case are ignored."""
    return _BY_MIME.get(mime.split(";", 1)[0].strip().lower())


def by_extension(extension: str) -> Format | None:
    """The format a lower-case extension with its dot (``.docx``) names, if any."""
    return _BY_EXTENSION.get(extension)
