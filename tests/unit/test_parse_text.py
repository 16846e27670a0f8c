"""Plain-text parsing, the shared decode/clean helpers, and `parse_document`'s contract."""

from __future__ import annotations

import pytest

import cairn.parse
import cairn.parse.formats
from cairn.errors import ParseError, UnsupportedFormat
from cairn.models import Element
from cairn.parse import FORMATS, parse_document
from cairn.parse.text import clean_text, decode_bytes, parse_text


def test_paragraphs_split_at_blank_lines_with_original_line_ranges() -> None:
    """Each blank-line-separated paragraph is one element with 1-based inclusive line numbers."""
    data = b"\n\nFirst line\nsecond line\n\n   \nThird para\n\n\nfourth\nfifth\nsixth\n"

    elements = parse_text(data)

    assert [e.text for e in elements] == ["First line\nsecond line", "Third para", "fourth\nfifth\nsixth"]
    assert [(e.location.line_start, e.location.line_end) for e in elements] == [(3, 4), (7, 7), (10, 12)]
    assert all(e.kind == "paragraph" for e in elements)


def test_last_paragraph_without_trailing_newline_ends_on_last_line() -> None:
    """A file that does not end in a newline still closes its last paragraph on its last line."""
    elements = parse_text(b"a\n\nb\nc")

    assert [(e.text, e.location.line_start, e.location.line_end) for e in elements] == [
        ("a", 1, 1),
        ("b\nc", 3, 4),
    ]


def test_windows_and_old_mac_line_ends_count_as_lines() -> None:
    """CRLF and lone CR both end a line, so line numbers match what an editor shows."""
    elements = parse_text(b"one\r\ntwo\r\n\r\nthree\rfour\r\rfive")

    assert [(e.text, e.location.line_start, e.location.line_end) for e in elements] == [
        ("one\ntwo", 1, 2),
        ("three\nfour", 4, 5),
        ("five", 7, 7),
    ]


def test_utf8_with_and_without_bom_decode_to_the_same_text() -> None:
    """UTF-8 decodes with or without a BOM, and the BOM never reaches the text."""
    text = "Grüße, naïve café"

    assert decode_bytes(text.encode("utf-8")) == text
    assert decode_bytes(b"\xef\xbb\xbf" + text.encode("utf-8")) == text
    assert parse_text(b"\xef\xbb\xbf" + text.encode("utf-8"))[0].text == text


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_bom_decodes(encoding: str) -> None:
    """UTF-16 in either byte order is recognised by its BOM."""
    text = "Zürich\n\nŁódź"
    bom = {"utf-16": b"", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}[encoding]
    data = bom + text.encode(encoding)

    assert [e.text for e in parse_text(data)] == ["Zürich", "Łódź"]


def test_invalid_utf8_falls_back_to_cp1252_then_latin1() -> None:
    """Bytes that are not UTF-8 decode as cp1252 (smart quotes), and latin-1 covers what cp1252 lacks."""
    assert decode_bytes("caf\xe9 \u201cquoted\u201d".encode("cp1252")) == "café “quoted”"
    # 0x81 is undefined in cp1252, so only latin-1 can decode this; it must not raise.
    assert decode_bytes(b"na\xefve \x81") == "naïve \x81"


def test_latin1_document_parses_without_error() -> None:
    """A latin-1 text file parses and keeps its accented letters."""
    elements = parse_text("Größe und Maß\n\nÉté".encode("latin-1"))

    assert [e.text for e in elements] == ["Größe und Maß", "Été"]


def test_control_and_zero_width_characters_are_stripped() -> None:
    """NUL, other C0 controls and zero-width characters vanish; tabs and newlines stay."""
    dirty = "a\x00b\x07c\u200bd\u200ce\u200df\u2060g\ufeffh\tend\nnext\x1b"

    assert clean_text(dirty) == "abcdefgh\tend\nnext"
    assert parse_text(dirty.encode("utf-8"))[0].text == "abcdefgh\tend\nnext"


def test_paragraph_of_only_invisible_characters_is_dropped() -> None:
    """A paragraph that is empty after cleaning produces no element, and line numbers stay right."""
    elements = parse_text("\u200b\x00\n\nreal text".encode())

    assert [(e.text, e.location.line_start) for e in elements] == [("real text", 3)]


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n  "])
def test_empty_file_raises_parse_error(data: bytes) -> None:
    """No bytes, or only whitespace, is a ParseError that says there is nothing to index."""
    with pytest.raises(ParseError, match="empty file: nothing to index") as caught:
        parse_document(data, path="notes/empty.txt")

    assert caught.value.path == "notes/empty.txt"


def test_file_with_only_invisible_characters_is_empty() -> None:
    """A document whose text is all control/zero-width characters is reported as empty."""
    with pytest.raises(ParseError, match="empty file"):
        parse_document("\u200b\u200b\x01\n".encode(), path="blank.txt")


def test_parse_document_detects_plain_text_by_extension() -> None:
    """Without a mime, a .txt file is parsed as plain text with line locations."""
    elements = parse_document(b"alpha\n\nbeta\n", path="a.txt")

    assert elements == [
        Element(text="alpha", location=elements[0].location, kind="paragraph"),
        Element(text="beta", location=elements[1].location, kind="paragraph"),
    ]
    assert elements[1].location.line_start == 3


def test_explicit_mime_overrides_detection_and_accepts_parameters() -> None:
    """A given mime (even with a charset parameter) picks the parser, whatever the file name says."""
    elements = parse_document(b"# Title\n\nbody", path="notes.txt", mime="text/markdown; charset=utf-8")

    assert [e.kind for e in elements] == ["heading", "paragraph"]
    assert elements[1].location.heading_path == ("Title",)


def test_unknown_mime_raises_unsupported_format() -> None:
    """A mime no parser handles is an UnsupportedFormat naming the type."""
    with pytest.raises(UnsupportedFormat, match="video/mp4") as caught:
        parse_document(b"abc", path="x.mp4", mime="video/mp4")

    assert caught.value.path == "x.mp4"


def test_unexpected_parser_failure_is_wrapped_with_path_and_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any exception a parser raises becomes a ParseError with the path, chaining the cause."""

    def broken_parser(data: bytes) -> list[Element]:
        raise ValueError("boom")

    monkeypatch.setattr(cairn.parse.formats, "_load", lambda target: broken_parser)

    with pytest.raises(ParseError, match="ValueError: boom") as caught:
        parse_document(b"text", path="docs/a.txt")

    assert caught.value.path == "docs/a.txt"
    assert isinstance(caught.value.__cause__, ValueError)


def test_parse_errors_from_parsers_get_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ParseError raised inside a parser reaches the caller with the file's path attached."""

    def refusing_parser(data: bytes) -> list[Element]:
        raise ParseError("cannot read this")

    monkeypatch.setattr(cairn.parse.formats, "_load", lambda target: refusing_parser)

    with pytest.raises(ParseError, match="cannot read this") as caught:
        parse_document(b"text", path="docs/b.txt")

    assert caught.value.path == "docs/b.txt"


def test_public_api_is_pinned() -> None:
    """The package exports exactly its documented names; every format has a unique type and extensions."""
    assert set(cairn.parse.__all__) == {
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
    }
    mimes = [f.mime for f in FORMATS]
    extensions = [e for f in FORMATS for e in f.extensions]
    assert len(mimes) == len(set(mimes))
    assert len(extensions) == len(set(extensions))
    assert {"text/plain", "text/markdown", "text/html", "application/pdf", "application/zip"} <= set(mimes)


def test_lone_surrogates_become_replacement_characters() -> None:
    """A lone surrogate (as JSON escapes can produce) is replaced, so the text can always be encoded."""
    cleaned = clean_text("caf\ud800e")

    assert cleaned == "caf\ufffde"
    assert cleaned.encode("utf-8")
