"""Media type detection: content signatures first, then extensions, then the binary sniff."""

from __future__ import annotations

import pytest

from cairn.errors import UnsupportedFormat
from cairn.parse import detect_mime, parse_document


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
    message = str(caught.value)
    for supported in ("Markdown", "HTML", "PDF", "plain text"):
        assert supported in message


def test_nul_after_the_first_8_kib_is_not_sniffed() -> None:
    """Only the first 8 KiB are sniffed for NUL bytes."""
    assert detect_mime("data.cfg", b"a" * 8192 + b"\x00") == "text/plain"


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"PK\x03\x04rest-of-zip", "ZIP"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG"),
        (b"\xff\xd8\xff\xe0JFIF", "JPEG"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "Microsoft Office"),
    ],
)
def test_known_binary_formats_are_named(data: bytes, named: str) -> None:
    """Common binary formats are rejected by signature, naming what they are, even with a text extension."""
    with pytest.raises(UnsupportedFormat, match=named):
        detect_mime("report.txt", data)


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
