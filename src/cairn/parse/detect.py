"""Decide a document's media type from its content first and its file name second.

Order: PDF and HTML signatures at the start of the bytes; signatures of common binary formats
(rejected, by name); the file extension; and, for unknown extensions or none, a binary sniff
(NUL bytes in the first 8 KiB) that keeps binary files out of the plain-text parser.
"""

from __future__ import annotations

import posixpath
import re

from cairn.errors import UnsupportedFormat

from .text import strip_bom

__all__ = ["HTML", "MARKDOWN", "PDF", "PLAIN_TEXT", "SUPPORTED_FORMATS", "detect_mime"]

PDF = "application/pdf"
HTML = "text/html"
MARKDOWN = "text/markdown"
PLAIN_TEXT = "text/plain"

SUPPORTED_FORMATS = "plain text (.txt, .rst, .log), Markdown (.md), HTML (.html, .htm) and PDF (.pdf)"

_BY_EXTENSION = {
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".html": HTML,
    ".htm": HTML,
    ".xhtml": HTML,
    ".txt": PLAIN_TEXT,
    ".text": PLAIN_TEXT,
    ".rst": PLAIN_TEXT,
    ".log": PLAIN_TEXT,
    ".pdf": PDF,
}

_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (or a ZIP-based document such as .docx, .xlsx, .epub)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Microsoft Office document (.doc, .xls, .ppt)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "an executable"),
)

_SNIFF_BYTES = 8192
_HEAD_BYTES = 1024
_PREAMBLE = re.compile(r"\s*(?:<\?xml.*?\?>|<!--.*?-->)", re.DOTALL)


def _text_head(data: bytes) -> str:
    """The first bytes as lower-case text, BOM-aware; undecodable bytes are dropped."""
    body, encoding = strip_bom(data[: _HEAD_BYTES + 4])
    return body.decode(encoding or "latin-1", errors="ignore").lower()


def _is_pdf(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n\x0c")[:5] == b"%PDF-"


def _is_html(data: bytes) -> bool:
    head = _text_head(data)
    position = 0
    # Skip an XML declaration and comments, which may precede the doctype of XHTML pages.
    while match := _PREAMBLE.match(head, position):
        position = match.end()
    head = head[position:].lstrip()
    if head.startswith("<!doctype html"):
        return True
    return head.startswith("<html") and head[5:6] in ("", ">", "/", " ", "\t", "\n", "\r", "\x0c")


def _extension(path: str) -> str:
    name = re.split(r"[\\/]", path)[-1]
    return posixpath.splitext(name)[1].lower()


def detect_mime(path: str, data: bytes) -> str:
    """Return the media type of the document at ``path`` with content ``data``.

    Content wins over the name (``%PDF-`` → PDF; ``<!doctype html``/``<html`` → HTML), then
    a known extension decides; other extensions, and none, mean plain text if the content
    looks like text.

    Raises:
        UnsupportedFormat: the content starts with the signature of a known binary format
            (ZIP, image, ...), or the extension is not a known one and the first 8 KiB hold
            NUL bytes (and no UTF-16/32 byte-order mark explains them).
    """
    if _is_pdf(data):
        return PDF
    if _is_html(data):
        return HTML
    for signature, description in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise UnsupportedFormat(
                f"the file is {description}, which cairn cannot index; supported formats: {SUPPORTED_FORMATS}",
                path=path,
            )
    known = _BY_EXTENSION.get(_extension(path))
    if known is not None:
        # A named document type is trusted: a log with a few NULs is still a log, and the
        # text cleaner strips NULs (the PDF parser judges PDF bytes and explains what is wrong).
        return known
    _, bom_encoding = strip_bom(data[:4])
    if bom_encoding in (None, "utf-8") and b"\x00" in data[:_SNIFF_BYTES]:
        raise UnsupportedFormat(
            f"the file looks like a binary file (it contains NUL bytes), which cairn cannot index; "
            f"supported formats: {SUPPORTED_FORMATS}",
            path=path,
        )
    return PLAIN_TEXT
