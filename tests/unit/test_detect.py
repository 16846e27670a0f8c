"""Media type detection: content signatures first, then extensions, then the binary sniff."""

from __future__ import annotations

import io
import random
import zipfile

import pytest

from cairn.errors import UnsupportedFormat
from cairn.parse import detect_mime, parse_document
from cairn.parse.formats import DOCX, PPTX, XLSX


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("notes/readme.md", "text/markdown"),
        ("notes/README.MARKDOWN", "text/markdown"),
        ("site/index.html", "text/html"),
        ("site/page.HTM", "text/html"),
        ("site/page.xhtml", "text/html"),
        ("a.txt", "text/plain"),
        ("a.text", "text/plain"),
        ("docs/guide.rst", "text/plain"),
        ("var/app.log", "text/plain"),
        ("LICENSE", "text/plain"),
        ("config/settings.yaml", "text/plain"),
        ("C:\\docs\\notes.md", "text/markdown"),
        ("archive.v2/notes", "text/plain"),
        ("paper.pdf", "application/pdf"),
    ],
)
def test_extension_decides_for_ordinary_content(path: str, expected: str) -> None:
    """Without a content signature, the (case-insensitive) extension picks the type; none means text."""
    assert detect_mime(path, b"plain words, nothing special\n") == expected


@pytest.mark.parametrize(
    "head",
    [
        b"%PDF-1.7\n",
        b"\xef\xbb\xbf%PDF-1.4\n",
        b"\n  %PDF-2.0\n",
    ],
)
def test_pdf_signature_wins_over_the_extension(head: bytes) -> None:
    """Bytes starting with %PDF- (after optional BOM/whitespace) are a PDF whatever the name."""
    assert detect_mime("misnamed.txt", head + b"rest") == "application/pdf"


@pytest.mark.parametrize(
    "head",
    [
        b"<!DOCTYPE html><html><body>x</body></html>",
        b"\xef\xbb\xbf\n  <!doctype HTML>\n<p>x",
        b"<html lang='en'><p>x",
        b"<HTML>",
        b'<?xml version="1.0"?>\n<!-- generated -->\n<html xmlns="http://www.w3.org/1999/xhtml">',
        "<!doctype html><p>x".encode("utf-16"),
    ],
)
def test_html_signature_wins_over_the_extension(head: bytes) -> None:
    """A page opening with a doctype or <html> tag is HTML even when named .txt or unnamed."""
    assert detect_mime("page.txt", head) == "text/html"
    assert detect_mime("download", head) == "text/html"


def test_html_mentioned_later_is_not_html() -> None:
    """Text that merely contains '<html' after other content keeps its extension's type."""
    assert detect_mime("notes.md", b"# Embedding\n\nUse <html> tags like this.") == "text/markdown"
    assert detect_mime("notes.txt", b"<htmlish> is not a tag we know") == "text/plain"


def test_binary_content_without_known_extension_is_unsupported() -> None:
    """NUL bytes in the first 8 KiB of an unknown or extension-less file mean binary: rejected."""
    with pytest.raises(UnsupportedFormat, match="binary") as caught:
        detect_mime("bin/tool", b"\x01\x02\x00\x00\x03abc")

    assert caught.value.path == "bin/tool"
    assert str(caught.value).startswith("skipped: the file is binary data")


def test_nul_after_the_first_8_kib_is_not_sniffed() -> None:
    """Only the first 8 KiB are sniffed for NUL bytes."""
    assert detect_mime("data.cfg", b"a" * 8192 + b"\x00") == "text/plain"


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"GIF89a\x01\x00\x01\x00", "GIF"),
        (b"\x1f\x8b\x08\x00\x00\x00", "gzip"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "Microsoft Office"),
        (b"\x7fELF\x02\x01\x01\x00", "executable"),
    ],
)
def test_unreadable_binary_formats_are_named(data: bytes, named: str) -> None:
    """Binary formats cairn cannot read are skipped by signature, naming what they are, even named .txt."""
    with pytest.raises(UnsupportedFormat, match=named) as caught:
        detect_mime("report.txt", data)

    assert str(caught.value).startswith("skipped:")


def _zip(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_zip("[Content_Types].xml", "word/document.xml"), DOCX),
        (_zip("[Content_Types].xml", "ppt/presentation.xml"), PPTX),
        (_zip("[Content_Types].xml", "xl/workbook.xml"), XLSX),
        (_zip("notes/a.txt"), "application/zip"),
        (b"PK\x03\x04truncated", "application/zip"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
        (b"\xff\xd8\xff\xe0JFIF", "image/jpeg"),
        (b"II*\x00\x08\x00", "image/tiff"),
        (b"MM\x00*\x00\x08", "image/tiff"),
        (b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n", "text/vtt"),
    ],
)
def test_content_signature_decides_whatever_the_name(data: bytes, expected: str) -> None:
    """Signatures (ZIP and the Office member inside it, images, WebVTT) beat a misleading extension."""
    assert detect_mime("misnamed.pdf.txt", data) == expected
    assert detect_mime("no-extension", data) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"1\n00:00:01,000 --> 00:00:02,500\nHello\n", "application/x-subrip"),
        (
            b"From alice@example.org Mon Jan  1 00:00:00 2024\nFrom: Alice <alice@example.org>\n\nhi\n",
            "application/mbox",
        ),
        (b"Received: by mx\nFrom: a@example.org\nSubject: hi\n\nbody\n", "message/rfc822"),
        (b"Subject: just one header-like line\n\nprose", "text/plain"),
        (b"Note: this is prose\nwith a colon on line one\n", "text/plain"),
    ],
)
def test_unnamed_text_is_sniffed_for_subtitles_and_mail(data: bytes, expected: str) -> None:
    """Without a known extension, SRT cues, mbox separators and mail header blocks are recognised."""
    assert detect_mime("download", data) == expected


def test_binary_content_with_a_text_extension_is_skipped() -> None:
    """Random bytes named .csv are binary, not CSV: skipped with a reason rather than parsed as garbage."""
    data = random.Random(7).randbytes(4096)

    with pytest.raises(UnsupportedFormat, match="binary"):
        detect_mime("table.csv", data)


def test_utf16_text_with_bom_is_not_mistaken_for_binary() -> None:
    """UTF-16 text has NUL bytes, but its BOM marks it as text."""
    data = "hello\n\nworld".encode("utf-16")

    assert detect_mime("notes", data) == "text/plain"
    assert [e.text for e in parse_document(data, path="notes")] == ["hello", "world"]


def test_named_text_file_with_stray_nuls_is_parsed_with_nuls_stripped() -> None:
    """A known text extension is trusted despite NUL bytes, and the NULs never reach the text."""
    data = b"log line one\x00\x00\n\nline two"

    assert detect_mime("app.log", data) == "text/plain"
    assert [e.text for e in parse_document(data, path="app.log")] == ["log line one", "line two"]


def test_parse_document_rejects_binary_as_unsupported_format() -> None:
    """parse_document surfaces the binary sniff as UnsupportedFormat with the path."""
    with pytest.raises(UnsupportedFormat) as caught:
        parse_document(b"\x00\x01\x02binary", path="blob.bin")

    assert caught.value.path == "blob.bin"
