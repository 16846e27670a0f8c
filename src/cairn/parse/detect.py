"""Decide a document's media type from its content first and its file name second.

Order: signatures at the start of the bytes (PDF, ZIP and the Office formats inside one, PNG,
JPEG, TIFF, HTML, WebVTT); signatures of binary formats cairn cannot read (rejected, by name);
the file extension, unless it names a text format and the content is binary; and, for unknown
extensions or none, sniffs for mbox, SRT and email headers, then plain text if it looks like text.
"""

from __future__ import annotations

import codecs
import io
import posixpath
import re
import zipfile

import puremagic

from cairn.errors import UnsupportedFormat

from .formats import DOCX, PPTX, XLSX, by_extension
from .text import strip_bom

PDF = "application/pdf"
HTML = "text/html"
PLAIN_TEXT = "text/plain"
VTT = "text/vtt"
SRT = "application/x-subrip"
MBOX = "application/mbox"
EML = "message/rfc822"
ZIP = "application/zip"

__all__ = ["detect_mime"]

_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
# Which member marks a ZIP as an Office Open XML document.
_OOXML_MARKERS = (("word/document.xml", DOCX), ("ppt/presentation.xml", PPTX), ("xl/workbook.xml", XLSX))

_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "a legacy Microsoft Office document (.doc, .xls, .ppt); save it as .docx/.xlsx/.pptx",
    ),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive; unpack it, or re-pack it as .zip"),
    (b"\x7fELF", "an executable"),
)

_SNIFF_BYTES = 8192
_HEAD_BYTES = 1024
_PREAMBLE = re.compile(r"\s*(?:<\?xml.*?\?>|<!--.*?-->)", re.DOTALL)
_WEBVTT = re.compile(rb"\A(?:\xef\xbb\xbf)?WEBVTT(?:[ \t\r\n]|\Z)")
_SRT_HEAD = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*\d+\r?\n\d{1,2}:\d{2}:\d{2}[,.]\d{1,3} --> ")
_MBOX_HEAD = re.compile(rb"\AFrom \S+.*\r?\n[A-Za-z][A-Za-z0-9-]*:[ \t]")
_HEADER_LINE = re.compile(rb"[A-Za-z][A-Za-z0-9-]*:[ \t]?.*")
_MAIL_HEADERS = {b"from", b"to", b"subject", b"date", b"received", b"return-path", b"message-id", b"mime-version"}
# Bytes no text encoding uses outside binary data: C0 controls other than \t \n \f \r and ESC.
_CONTROL_BYTES = frozenset(range(0x00, 0x09)) | frozenset(range(0x0E, 0x1B)) | frozenset(range(0x1C, 0x20))


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


def _ooxml_kind(path: str, data: bytes) -> str:
    """DOCX, PPTX or XLSX by the members a ZIP holds; any other ZIP is a ZIP.

    An unreadable ZIP keeps the Office type its name gives (a truncated .docx), so the message
    the user sees is about a damaged Word document rather than about a ZIP archive.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        named = by_extension(_extension(path))
        return named.mime if named is not None and named.mime in (DOCX, PPTX, XLSX) else ZIP
    for marker, mime in _OOXML_MARKERS:
        if marker in names:
            return mime
    return ZIP


def _looks_like_mail(data: bytes) -> bool:
    """An RFC 5322 header block: header lines up to a blank line, including well-known mail headers."""
    names: set[bytes] = set()
    for line in data[:_SNIFF_BYTES].splitlines():
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t"):
            continue  # a folded continuation of the previous header
        if not _HEADER_LINE.fullmatch(line):
            return False
        names.add(line.split(b":", 1)[0].lower())
    return len(names & _MAIL_HEADERS) >= 2


def _is_utf8(head: bytes) -> bool:
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _looks_binary(data: bytes, *, named_text: bool) -> bool:
    """Binary, not text: control bytes that no text encoding produces, in the first 8 KiB.

    A UTF-16/32 byte-order mark explains NUL bytes. For a file whose name says it is text, a
    few stray NULs (a log padded after a crash) are not enough: it must also fail to be UTF-8,
    or be mostly control bytes.
    """
    head = data[:_SNIFF_BYTES]
    _, bom_encoding = strip_bom(head[:4])
    if bom_encoding not in (None, "utf-8") or not head:
        return False
    share = sum(1 for byte in head if byte in _CONTROL_BYTES) / len(head)
    if named_text:
        return share > 0.30 or (share > 0.05 and not _is_utf8(head))
    return (b"\x00" in head and share > 0.02) or share > 0.10


def _binary_description(path: str, data: bytes) -> str:
    for signature, description in _BINARY_SIGNATURES:
        if data.startswith(signature):
            return description
    extension = _extension(path)
    try:
        matches = puremagic.magic_string(data[:_SNIFF_BYTES])
    except (puremagic.PureError, ValueError):
        matches = []
    # Short signatures (BMP's "BM") match with low confidence; the file's own extension agreeing
    # with one of them settles it.
    named = [m for m in matches if m.name and (m.confidence >= 0.4 or (extension and m.extension == extension))]
    if named:
        return f"binary data ({named[0].name})"
    return f"binary data of an unknown kind{f' ({extension} file)' if extension else ''}"


def _unsupported(path: str, description: str) -> UnsupportedFormat:
    return UnsupportedFormat(f"skipped: the file is {description}, which cairn does not index", path=path)


def detect_mime(path: str, data: bytes) -> str:
    """Return the media type of the document at ``path`` with content ``data``.

    Content wins over the name: signatures of PDF, ZIP (and the Office formats inside one),
    images, HTML and WebVTT decide first. Then a known extension decides, unless the content is
    binary while the extension names a text format. Without a known extension, the content is
    sniffed for mbox, email and SRT, and is otherwise plain text if it looks like text.

    Raises:
        UnsupportedFormat: the content is binary of a kind no parser reads; the message names
            the kind where it is recognisable (GIF, gzip, legacy Office, executable...).
    """
    if _is_pdf(data):
        return PDF
    if data.startswith(_ZIP_SIGNATURES):
        return _ooxml_kind(path, data)
    for signature, mime in _IMAGE_SIGNATURES:
        if data.startswith(signature):
            return mime
    if _is_html(data):
        return HTML
    if _WEBVTT.match(data):
        return VTT
    if any(data.startswith(signature) for signature, _ in _BINARY_SIGNATURES):
        raise _unsupported(path, _binary_description(path, data))
    known = by_extension(_extension(path))
    named_text = known is not None and not known.binary
    binary = _looks_binary(data, named_text=named_text)
    if known is not None and not (binary and named_text):
        # A named document type is trusted: the text cleaner strips stray NULs, and binary
        # parsers (PDF, images, Office) judge their own bytes and explain what is wrong.
        return known.mime
    if binary:
        raise _unsupported(path, _binary_description(path, data))
    if _MBOX_HEAD.match(data):
        return MBOX
    if _SRT_HEAD.match(data):
        return SRT
    if _looks_like_mail(data):
        return EML
    return PLAIN_TEXT
