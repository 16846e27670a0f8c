"""Word parsing: body order, heading paths, list items, tables as rows, and damaged files."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import docx
import pptx
import pytest
from docx.document import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls

from cairn.errors import ParseError
from cairn.models import Element
from cairn.parse.docx import parse_docx

REAL = Path(__file__).parent.parent / "fixtures" / "real" / "formats"


def _docx(build: Callable[[Document], object]) -> bytes:
    document = docx.Document()
    build(document)
    output = io.BytesIO()
    document.save(output)
    return output.getvalue()


def _with_body_xml(xml: str) -> bytes:
    """A document whose body holds ``xml`` (WordprocessingML, ``w:`` prefix) before anything else."""

    def build(document: Document) -> None:
        body = document.element.body
        for element in reversed(parse_xml(f"<w:body {nsdecls('w')}>{xml}</w:body>")):
            body.insert(0, element)

    return _docx(build)


def _summary(elements: list[Element]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(e.kind, e.text, e.location.heading_path) for e in elements]


def test_headings_nest_and_pop_under_the_title() -> None:
    """Title is level 0; a Heading n closes open headings of level n or deeper; headings are elements."""

    def build(document: Document) -> None:
        document.add_heading("Manual", 0)
        document.add_paragraph("intro")
        document.add_heading("Install", 1)
        document.add_heading("Linux", 2)
        document.add_paragraph("apt install")
        document.add_heading("Use", 1)
        document.add_paragraph("run it")

    assert _summary(parse_docx(_docx(build))) == [
        ("heading", "Manual", ("Manual",)),
        ("paragraph", "intro", ("Manual",)),
        ("heading", "Install", ("Manual", "Install")),
        ("heading", "Linux", ("Manual", "Install", "Linux")),
        ("paragraph", "apt install", ("Manual", "Install", "Linux")),
        ("heading", "Use", ("Manual", "Use")),
        ("paragraph", "run it", ("Manual", "Use")),
    ]


def test_style_based_on_a_heading_and_outline_level_make_headings() -> None:
    """A custom style based on Heading 2 is a level-2 heading; so is a paragraph with outline level 1."""

    def build(document: Document) -> None:
        chapter = document.styles.add_style("Chapter Title", WD_STYLE_TYPE.PARAGRAPH)
        chapter.base_style = document.styles["Heading 2"]
        document.add_heading("Top", 1)
        document.add_paragraph("Custom", style="Chapter Title")
        document.add_paragraph("under custom")

    data = _with_body_xml(
        '<w:p><w:pPr><w:outlineLvl w:val="1"/></w:pPr><w:r><w:t>Outlined</w:t></w:r></w:p>'
        "<w:p><w:r><w:t>under outlined</w:t></w:r></w:p>"
    )

    assert _summary(parse_docx(_docx(build))) == [
        ("heading", "Top", ("Top",)),
        ("heading", "Custom", ("Top", "Custom")),
        ("paragraph", "under custom", ("Top", "Custom")),
    ]
    assert _summary(parse_docx(data))[:2] == [
        ("heading", "Outlined", ("Outlined",)),
        ("paragraph", "under outlined", ("Outlined",)),
    ]


def test_list_styles_and_numbering_make_list_items() -> None:
    """List Bullet/List Number paragraphs, and paragraphs with their own numbering, are list items."""

    def build(document: Document) -> None:
        document.add_paragraph("first", style="List Bullet")
        document.add_paragraph("second", style="List Number")
        document.add_paragraph("plain")

    numbered = _with_body_xml(
        '<w:p><w:pPr><w:numPr><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>numbered</w:t></w:r></w:p>'
        '<w:p><w:pPr><w:numPr><w:numId w:val="0"/></w:numPr></w:pPr><w:r><w:t>unnumbered</w:t></w:r></w:p>'
    )

    assert [(e.kind, e.text) for e in parse_docx(_docx(build))] == [
        ("list_item", "first"),
        ("list_item", "second"),
        ("paragraph", "plain"),
    ]
    assert [(e.kind, e.text) for e in parse_docx(numbered)] == [("list_item", "numbered"), ("paragraph", "unnumbered")]


def test_tables_become_rows_in_document_order() -> None:
    """A table between paragraphs yields one row element per data row, named by its first row."""

    def build(document: Document) -> None:
        document.add_heading("Staff", 1)
        document.add_paragraph("before")
        table = document.add_table(rows=3, cols=3)
        values = [["name", "team", "start"], ["Alice", "Sales", "2021"], ["Bob", "", "2022"]]
        for row, texts in zip(table.rows, values, strict=True):
            for cell, value in zip(row.cells, texts, strict=True):
                cell.text = value
        document.add_paragraph("after")

    assert _summary(parse_docx(_docx(build))) == [
        ("heading", "Staff", ("Staff",)),
        ("paragraph", "before", ("Staff",)),
        ("table_row", "name: Alice; team: Sales; start: 2021", ("Staff",)),
        ("table_row", "name: Bob; start: 2022", ("Staff",)),
        ("paragraph", "after", ("Staff",)),
    ]


def test_merged_cells_keep_later_values_under_their_own_columns() -> None:
    """A cell spanning two grid columns does not shift the values after it to the wrong names."""
    data = _with_body_xml(
        "<w:tbl>"
        "<w:tr><w:tc><w:p><w:r><w:t>a</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>b</w:t></w:r></w:p></w:tc>"
        "<w:tc><w:p><w:r><w:t>c</w:t></w:r></w:p></w:tc></w:tr>"
        '<w:tr><w:tc><w:tcPr><w:gridSpan w:val="2"/></w:tcPr><w:p><w:r><w:t>wide</w:t></w:r></w:p></w:tc>'
        "<w:tc><w:p><w:r><w:t>last</w:t></w:r></w:p></w:tc></w:tr>"
        "</w:tbl>"
    )

    assert [e.text for e in parse_docx(data)] == ["a: wide; c: last"]


def test_header_only_table_and_nested_table_keep_their_text() -> None:
    """A one-row table yields its cells; a table inside a cell is read as ``|``-separated lines."""

    def build(document: Document) -> None:
        document.add_table(rows=1, cols=2).rows[0].cells[0].text = "lonely header"
        outer = document.add_table(rows=2, cols=1)
        outer.cell(0, 0).text = "outer"
        inner = outer.cell(1, 0).add_table(rows=1, cols=2)
        inner.cell(0, 0).text = "x"
        inner.cell(0, 1).text = "y"

    assert [e.text for e in parse_docx(_docx(build))] == ["lonely header", "outer: x | y"]


def test_content_controls_and_tracked_insertions_are_read_and_deletions_are_not() -> None:
    """Text inside ``w:sdt`` blocks and runs, hyperlinks and ``w:ins`` is kept; ``w:del`` text is not."""
    data = _with_body_xml(
        "<w:sdt><w:sdtPr/><w:sdtContent><w:p><w:r><w:t>in a block control</w:t></w:r></w:p></w:sdtContent></w:sdt>"
        "<w:p><w:r><w:t>kept </w:t></w:r><w:del><w:r><w:delText>removed </w:delText></w:r></w:del>"
        "<w:ins><w:r><w:t>inserted </w:t></w:r></w:ins>"
        "<w:sdt><w:sdtContent><w:r><w:t>inline control </w:t></w:r></w:sdtContent></w:sdt>"
        '<w:hyperlink r:id="rId99"><w:r><w:t>link</w:t></w:r></w:hyperlink></w:p>'.replace(
            "<w:hyperlink", f"<w:hyperlink {nsdecls('r')}"
        )
    )

    assert [e.text for e in parse_docx(data)] == ["in a block control", "kept inserted inline control link"]


def test_line_breaks_and_tabs_survive() -> None:
    """A manual line break is a newline and a tab a tab inside the paragraph's text."""

    def build(document: Document) -> None:
        paragraph = document.add_paragraph("one")
        paragraph.add_run().add_break()
        paragraph.add_run("two\tthree")

    assert [e.text for e in parse_docx(_docx(build))] == ["one\ntwo\tthree"]


def test_empty_document_has_no_elements() -> None:
    """A document without text yields nothing (the dispatcher reports it as empty)."""
    assert parse_docx(_docx(lambda document: document.add_paragraph("   "))) == []


def test_truncated_docx_is_a_parse_error_that_says_what_to_do() -> None:
    """A cut-off file is reported as not a valid .docx, with advice to re-save it."""
    data = _docx(lambda document: document.add_paragraph("text"))

    with pytest.raises(ParseError, match=r"not a valid Word \.docx document.*re-save it") as caught:
        parse_docx(data[: len(data) // 2])

    assert caught.value.__cause__ is not None


def test_another_office_format_is_not_taken_for_a_document() -> None:
    """A .pptx renamed to .docx fails clearly instead of yielding nothing."""
    output = io.BytesIO()
    pptx.Presentation().save(output)

    with pytest.raises(ParseError, match=r"not a valid Word \.docx document.*presentationml"):
        parse_docx(output.getvalue())


def _with_raw_body_xml(xml: str) -> bytes:
    """Like `_with_body_xml`, but spliced into the saved file's XML (python-docx would refuse to build it)."""
    data = _docx(lambda document: None)
    source = zipfile.ZipFile(io.BytesIO(data))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            member = source.read(info)
            if info.filename == "word/document.xml":
                member = member.replace(b"<w:body>", b"<w:body>" + xml.encode())
            target.writestr(info, member)
    return output.getvalue()


def test_deep_but_parseable_nesting_is_read() -> None:
    """Content controls nested 120 deep (as deep as the XML parser allows) are still read through."""
    data = _with_raw_body_xml(
        "<w:sdt><w:sdtContent>" * 120 + "<w:p><w:r><w:t>deep</w:t></w:r></w:p>" + "</w:sdtContent></w:sdt>" * 120
    )

    assert [e.text for e in parse_docx(data)] == ["deep"]


def test_hostile_nesting_is_a_parse_error_not_a_crash() -> None:
    """Nesting beyond the XML parser's depth limit fails as a ParseError (no RecursionError)."""
    data = _with_raw_body_xml("<w:sdt><w:sdtContent>" * 400 + "<w:p/>" + "</w:sdtContent></w:sdt>" * 400)

    with pytest.raises(ParseError, match="not a valid Word"):
        parse_docx(data)


def test_real_systemd_document() -> None:
    """systemd's UID/GID document: Title and Heading 1 sections, list items, a summary table, the phrase."""
    data = (REAL / "systemd-uids-gids.docx").read_bytes()
    phrase = json.loads((REAL / "phrases-office.json").read_text())["systemd-uids-gids.docx"]

    elements = parse_docx(data)

    title = "Users, Groups, UIDs and GIDs on systemd Systems"
    assert elements[0].kind == "heading"
    assert elements[0].location.heading_path == (title,)
    assert ("heading", "Special Linux UIDs", (title, "Special Linux UIDs")) in _summary(elements)
    assert any(e.kind == "list_item" and e.text.startswith("65534 → The nobody UID") for e in elements)
    rows = [e for e in elements if e.kind == "table_row"]
    assert rows[0].text.startswith("UID/GID: 0; Purpose: root user")
    assert rows[0].location.heading_path == (title, "Summary")
    assert phrase in " ".join(" ".join(e.text for e in elements).split())
