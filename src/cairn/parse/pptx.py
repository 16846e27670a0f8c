"""PowerPoint (.pptx) parsing with python-pptx: each slide's title, text, tables and speaker notes.

Every element of slide n has ``location.slide == n`` (1-based, in presentation order) and, when
the slide has a title, ``heading_path == (title,)``. Kinds produced: ``heading`` (the title),
``paragraph`` (a run of non-empty paragraphs in one text frame; an empty paragraph ends it),
``table_row`` (one element per row after the first, which names the columns; see `tabular`) and
``notes`` (the speaker notes). Shapes are read in the slide's z-order, inside groups too; slide
number, date and footer placeholders are skipped, as are pictures, charts and SmartArt.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO

import pptx
from pptx.enum.shapes import PP_PLACEHOLDER
from pptx.presentation import Presentation
from pptx.shapes.autoshape import Shape
from pptx.shapes.base import BaseShape
from pptx.shapes.graphfrm import GraphicFrame
from pptx.shapes.group import GroupShape
from pptx.slide import Slide
from pptx.table import Table
from pptx.text.text import TextFrame

from cairn.models import Element, Location

from .ooxml import OfficeFormat, read_salvaging
from .tabular import table_elements
from .text import clean_text, make_element

__all__ = ["parse_pptx"]

POWERPOINT = OfficeFormat("PowerPoint .pptx presentation", ".pptx", "PowerPoint or LibreOffice Impress")

# Placeholders that repeat on every slide and say nothing about its content.
_BOILERPLATE = frozenset({PP_PLACEHOLDER.SLIDE_NUMBER, PP_PLACEHOLDER.DATE, PP_PLACEHOLDER.FOOTER})


def _text(text: str) -> str:
    # python-pptx writes a line break inside a paragraph as a vertical tab.
    return text.replace("\v", "\n")


def _paragraph_groups(frame: TextFrame) -> Iterator[str]:
    """Runs of consecutive non-empty paragraphs, each joined by newlines."""
    group: list[str] = []
    for paragraph in frame.paragraphs:
        text = _text(paragraph.text)
        if text.strip():
            group.append(text)
        elif group:
            yield "\n".join(group)
            group = []
    if group:
        yield "\n".join(group)


def _shapes(shapes: Iterable[BaseShape]) -> Iterator[BaseShape]:
    """Shapes in z-order, with each group replaced by the shapes inside it."""
    for shape in shapes:
        if isinstance(shape, GroupShape):
            yield from _shapes(shape.shapes)
        else:
            yield shape


def _is_boilerplate(shape: BaseShape) -> bool:
    return shape.is_placeholder and shape.placeholder_format.type in _BOILERPLATE


def _table_rows(table: Table) -> Iterator[list[str]]:
    for row in table.rows:
        # A cell covered by a merge repeats nothing; its text is empty.
        yield [_text(cell.text) for cell in row.cells]


def _slide_elements(slide: Slide, number: int) -> list[Element]:
    title_shape = slide.shapes.title
    title = _text(title_shape.text_frame.text) if title_shape is not None else ""
    heading = " ".join(clean_text(title).split())
    location = Location(slide=number, heading_path=(heading,) if heading else ())
    elements: list[Element] = []

    def emit(text: str, kind: str) -> None:
        element = make_element(text, location=location, kind=kind)
        if element is not None:
            elements.append(element)

    emit(title, "heading")
    for shape in _shapes(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        if isinstance(shape, GraphicFrame) and shape.has_table:
            elements.extend(table_elements((values, location) for values in _table_rows(shape.table)))
        elif isinstance(shape, Shape) and not _is_boilerplate(shape):
            for group in _paragraph_groups(shape.text_frame):
                emit(group, "paragraph")
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        if notes is not None:
            emit(_text(notes.text), "notes")
    return elements


def parse_pptx(data: bytes) -> list[Element]:
    """Parse a .pptx file into elements, slide by slide in presentation order.

    Raises:
        ParseError: the file is not a readable PowerPoint presentation (damaged,
            password-protected, or another kind of file).
        LimitExceeded: the package would expand too far (a decompression bomb).
    """
    return read_salvaging(data, POWERPOINT, _read)


def _read(package: IO[bytes]) -> list[Element]:
    # Shapes resolve layouts and placeholders lazily, so damage may surface while slides are read.
    presentation: Presentation = pptx.Presentation(package)
    elements: list[Element] = []
    for number, slide in enumerate(presentation.slides, start=1):
        elements.extend(_slide_elements(slide, number))
    return elements
