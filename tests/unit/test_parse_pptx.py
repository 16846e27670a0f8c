"""PowerPoint parsing: slide numbers, titles as headings, text groups, tables, groups and notes."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import docx
import pptx
import pytest
from pptx.enum.shapes import PP_PLACEHOLDER
from pptx.presentation import Presentation
from pptx.util import Inches

from cairn.errors import ParseError
from cairn.models import Element
from cairn.parse.pptx import parse_pptx

REAL = Path(__file__).parent.parent / "fixtures" / "real" / "formats"

_TITLE_AND_CONTENT, _TITLE_ONLY, _BLANK = 1, 5, 6
_BOILERPLATE = (PP_PLACEHOLDER.DATE, PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.SLIDE_NUMBER)


def _pptx(build: Callable[[Presentation], object]) -> bytes:
    presentation = pptx.Presentation()
    build(presentation)
    output = io.BytesIO()
    presentation.save(output)
    return output.getvalue()


def _summary(elements: list[Element]) -> list[tuple[int | None, str, str, tuple[str, ...]]]:
    return [(e.location.slide, e.kind, e.text, e.location.heading_path) for e in elements]


def test_slides_are_numbered_and_titled() -> None:
    """Each slide's elements carry its 1-based number; a title is a heading and the slide's path."""

    def build(presentation: Presentation) -> None:
        first = presentation.slides.add_slide(presentation.slide_layouts[_TITLE_AND_CONTENT])
        first.shapes.title.text = "Install"
        first.placeholders[1].text_frame.text = "Download the package"
        second = presentation.slides.add_slide(presentation.slide_layouts[_BLANK])
        second.shapes.add_textbox(0, 0, Inches(4), Inches(1)).text_frame.text = "untitled text"

    assert _summary(parse_pptx(_pptx(build))) == [
        (1, "heading", "Install", ("Install",)),
        (1, "paragraph", "Download the package", ("Install",)),
        (2, "paragraph", "untitled text", ()),
    ]


def test_paragraphs_group_until_an_empty_paragraph_and_breaks_are_newlines() -> None:
    """Consecutive paragraphs of a text frame form one element; an empty one starts the next."""

    def build(presentation: Presentation) -> None:
        slide = presentation.slides.add_slide(presentation.slide_layouts[_BLANK])
        frame = slide.shapes.add_textbox(0, 0, Inches(4), Inches(2)).text_frame
        frame.text = "first point"
        frame.add_paragraph().text = "sub point"
        frame.add_paragraph()
        frame.add_paragraph().text = "line one\vline two"

    assert [e.text for e in parse_pptx(_pptx(build))] == ["first point\nsub point", "line one\nline two"]


def test_tables_are_rows_named_by_their_first_row() -> None:
    """A table shape yields one element per data row, ``name: value`` pairs, on its slide."""

    def build(presentation: Presentation) -> None:
        slide = presentation.slides.add_slide(presentation.slide_layouts[_TITLE_ONLY])
        slide.shapes.title.text = "Benchmarks"
        table = slide.shapes.add_table(3, 2, 0, Inches(2), Inches(6), Inches(2)).table
        for row, values in zip(table.rows, [["tool", "ratio"], ["zstd", "2.887"], ["", ""]], strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value

    assert _summary(parse_pptx(_pptx(build))) == [
        (1, "heading", "Benchmarks", ("Benchmarks",)),
        (1, "table_row", "tool: zstd; ratio: 2.887", ("Benchmarks",)),
    ]


def test_shapes_inside_groups_are_read_in_order() -> None:
    """Text boxes inside (nested) group shapes are read where the group stands."""

    def build(presentation: Presentation) -> None:
        slide = presentation.slides.add_slide(presentation.slide_layouts[_BLANK])
        slide.shapes.add_textbox(0, 0, Inches(2), Inches(1)).text_frame.text = "before"
        group = slide.shapes.add_group_shape()
        group.shapes.add_textbox(0, Inches(1), Inches(2), Inches(1)).text_frame.text = "grouped"
        inner = group.shapes.add_group_shape()
        inner.shapes.add_textbox(0, Inches(2), Inches(2), Inches(1)).text_frame.text = "nested"
        slide.shapes.add_textbox(0, Inches(3), Inches(2), Inches(1)).text_frame.text = "after"

    assert [e.text for e in parse_pptx(_pptx(build))] == ["before", "grouped", "nested", "after"]


def test_speaker_notes_are_notes_elements_of_their_slide() -> None:
    """Speaker notes come last for their slide, with kind ``notes`` and the slide's title path."""

    def build(presentation: Presentation) -> None:
        slide = presentation.slides.add_slide(presentation.slide_layouts[_TITLE_ONLY])
        slide.shapes.title.text = "Status"
        slide.notes_slide.notes_text_frame.text = "Mention the production rollout.\nThen take questions."

    assert _summary(parse_pptx(_pptx(build)))[-1] == (
        1,
        "notes",
        "Mention the production rollout.\nThen take questions.",
        ("Status",),
    )


def test_slide_number_and_footer_placeholders_are_skipped() -> None:
    """Boilerplate placeholders (slide number, date, footer) carry no slide content."""

    def build(presentation: Presentation) -> None:
        slide = presentation.slides.add_slide(presentation.slide_layouts[_TITLE_ONLY])
        slide.shapes.title.text = "Agenda"
        for placeholder in slide.slide_layout.placeholders:
            if placeholder.placeholder_format.type in _BOILERPLATE:
                slide.shapes.clone_placeholder(placeholder)
        for shape in slide.placeholders:
            if shape.placeholder_format.type in _BOILERPLATE:
                shape.text_frame.text = "Company confidential"
        assert len(slide.placeholders) == 4

    assert [e.text for e in parse_pptx(_pptx(build))] == ["Agenda"]


def test_empty_presentation_has_no_elements() -> None:
    """A presentation without slides yields nothing (the dispatcher reports it as empty)."""
    assert parse_pptx(_pptx(lambda presentation: None)) == []


def test_truncated_pptx_is_a_parse_error_that_says_what_to_do() -> None:
    """A cut-off file is reported as not a valid .pptx, with advice to re-save it."""
    data = _pptx(lambda presentation: presentation.slides.add_slide(presentation.slide_layouts[_BLANK]))

    with pytest.raises(ParseError, match=r"not a valid PowerPoint \.pptx presentation.*re-save it"):
        parse_pptx(data[: len(data) // 3])


def test_a_word_document_is_not_taken_for_a_presentation() -> None:
    """A .docx renamed to .pptx fails clearly instead of yielding nothing."""
    output = io.BytesIO()
    docx.Document().save(output)

    with pytest.raises(ParseError, match=r"not a valid PowerPoint \.pptx presentation.*wordprocessingml"):
        parse_pptx(output.getvalue())


def test_real_zstd_slides() -> None:
    """The zstd README as slides: section titles as headings, the benchmark table, notes, the phrase."""
    data = (REAL / "zstd-readme.pptx").read_bytes()
    phrase = json.loads((REAL / "phrases-office.json").read_text())["zstd-readme.pptx"]

    elements = parse_pptx(data)

    headings = [(e.location.slide, e.text) for e in elements if e.kind == "heading"]
    assert headings[:2] == [(1, "Zstandard"), (2, "Benchmarks")]
    assert [e.location.slide for e in elements] == sorted(e.location.slide or 0 for e in elements)
    rows = [e for e in elements if e.kind == "table_row"]
    assert rows[0].text == "Compressor name: zstd 1.5.1 -1; Ratio: 2.887; Compression: 530 MB/s; Decompress.: 1700 MB/s"
    assert rows[0].location.heading_path == ("Benchmarks",)
    assert any(e.kind == "notes" for e in elements)
    assert phrase in " ".join(" ".join(e.text for e in elements).split())
