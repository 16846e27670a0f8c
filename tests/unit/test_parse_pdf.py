"""PDF parsing: page numbers, paragraph splitting, scanned and broken files."""

from __future__ import annotations

import os

import pytest
from pdf_fixture import build_pdf

from cairn.errors import ParseError
from cairn.parse import parse_document
from cairn.parse.pdf import parse_pdf

THREE_PAGES = build_pdf(
    [
        [["Alpha opens the report", "and continues here."], ["A second paragraph on page one."]],
        [["Bravo is on page two."]],
        [["Charlie closes", "the report on page three."]],
    ]
)


def test_text_is_read_back_with_page_numbers_across_three_pages() -> None:
    """Each element carries the 1-based page its text is on."""
    elements = parse_document(THREE_PAGES, path="report.pdf")

    assert [(e.location.page, e.text) for e in elements] == [
        (1, "Alpha opens the report\nand continues here."),
        (1, "A second paragraph on page one."),
        (2, "Bravo is on page two."),
        (3, "Charlie closes\nthe report on page three."),
    ]
    assert all(e.kind == "paragraph" for e in elements)
    assert elements[3].location.label == "p. 3"


def test_paragraphs_split_at_wide_vertical_gaps() -> None:
    """Lines separated by a wider gap than the page's line spacing start a new element."""
    pdf = build_pdf([[["one a", "one b", "one c"], ["two a", "two b"], ["three a"]]])

    assert [e.text for e in parse_pdf(pdf)] == ["one a\none b\none c", "two a\ntwo b", "three a"]


def test_pages_without_text_are_skipped() -> None:
    """A page with no text layer yields no element; the others keep their page numbers."""
    pdf = build_pdf([[], [["only page two has text"]], []])

    assert [(e.location.page, e.text) for e in parse_pdf(pdf)] == [(2, "only page two has text")]


def test_pdf_without_any_text_layer_raises() -> None:
    """A PDF whose pages have neither a text layer nor anything to OCR is a ParseError that says so."""
    with pytest.raises(ParseError, match="no text layer") as caught:
        parse_document(build_pdf([[], []]), path="scan.pdf")

    assert caught.value.path == "scan.pdf"
    assert "OCR" in str(caught.value)


@pytest.mark.parametrize("cut", [20, 200, len(THREE_PAGES) // 2])
def test_truncated_pdf_raises_parse_error(cut: int) -> None:
    """A truncated PDF is a ParseError with advice, never a pypdfium2 exception."""
    with pytest.raises(ParseError, match="PDF") as caught:
        parse_document(THREE_PAGES[:cut], path="broken.pdf")

    assert caught.value.path == "broken.pdf"
    assert type(caught.value.__cause__).__module__.startswith("pypdfium2") or "no text" in str(caught.value)


def test_pdf_header_followed_by_garbage_raises_parse_error() -> None:
    """Bytes that start like a PDF but are not one raise ParseError saying the file is not readable."""
    with pytest.raises(ParseError, match="not a readable PDF"):
        parse_document(b"%PDF-1.7\n" + b"\x8f\x00garbage" * 100, path="fake.pdf")


def test_password_protected_pdf_raises_parse_error_with_advice() -> None:
    """A PDF that needs a password is a ParseError saying so and how to fix it."""
    pdf = build_pdf([[["secret text"]]], password_protected=True)

    with pytest.raises(ParseError, match="password") as caught:
        parse_document(pdf, path="locked.pdf")

    assert "decrypt" in str(caught.value)


def test_random_bytes_with_pdf_extension_raise_parse_error() -> None:
    """Random bytes named .pdf raise ParseError (UnsupportedFormat is a subclass of it)."""
    with pytest.raises(ParseError):
        parse_document(os.urandom(4096), path="random.pdf")


def test_parentheses_and_backslashes_survive_the_text_layer() -> None:
    """Escaped PDF string characters come back as the original text."""
    pdf = build_pdf([[["Costs (net) \\ gross"]]])

    assert [e.text for e in parse_pdf(pdf)] == ["Costs (net) \\ gross"]
