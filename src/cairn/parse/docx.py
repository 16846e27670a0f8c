"""Word (.docx) parsing with python-docx: body paragraphs and tables in order, under their headings.

Kinds produced: ``heading`` (styles Title and Heading 1–9, styles based on them, or an outline
level), ``list_item`` (List styles or numbered/bulleted paragraphs), ``paragraph`` and
``table_row`` (one element per row after the first, which names the columns; see `tabular`).
The heading path works as in Markdown, with Title as level 0 above Heading 1.

The body XML is walked directly rather than through python-docx's paragraph list, so text
inside content controls (``w:sdt``), tracked insertions and smart tags is kept; deleted text,
field codes, headers, footers, comments and text boxes are not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

import docx
from docx.document import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml.ns import qn
from docx.oxml.text.run import CT_R
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.styles.style import CharacterStyle, ParagraphStyle

from cairn.models import Element, Location

from .ooxml import OfficeFormat, read_salvaging
from .tabular import table_elements
from .text import clean_text, make_element

__all__ = ["parse_docx"]

WORD = OfficeFormat("Word .docx document", ".docx", "Word or LibreOffice Writer")

_P, _TBL, _TR, _TC = qn("w:p"), qn("w:tbl"), qn("w:tr"), qn("w:tc")
# Elements that only wrap content: their children are read as if they stood in their place.
_BLOCK_WRAPPERS = frozenset(qn(tag) for tag in ("w:sdt", "w:sdtContent", "w:customXml", "w:ins", "w:moveTo"))
_RUN_WRAPPERS = _BLOCK_WRAPPERS | {qn("w:hyperlink"), qn("w:smartTag"), qn("w:fldSimple")}
_HEADING_NAME = re.compile(r"heading ([1-9])")
# Word allows 63 columns; a larger span is damage (or hostility) and must not allocate rows of it.
_MAX_SPAN = 63
# Styles may be based on styles, in chains Word keeps short; a cycle must not loop forever.
_MAX_STYLE_CHAIN = 16
_TITLE_LEVEL = 0


@dataclass(frozen=True)
class _Role:
    """What a paragraph style makes a paragraph: a heading of some level, a list item, or neither."""

    level: int | None = None
    list_item: bool = False


def _number(element: BaseOxmlElement, path: str) -> int | None:
    """The first value at ``path`` as a non-negative integer; ``None`` when absent or malformed."""
    values = element.xpath(path)
    text = str(values[0]) if values else ""
    return int(text) if text.isascii() and text.isdigit() else None


def _outline_level(element: BaseOxmlElement) -> int | None:
    """The heading level a ``w:outlineLvl`` in ``element``'s properties gives (0–8 → 1–9; 9 is body text)."""
    level = _number(element, "./w:pPr/w:outlineLvl/@w:val")
    return level + 1 if level is not None and level < 9 else None


def _numbered(element: BaseOxmlElement) -> bool:
    """Whether ``element``'s properties attach numbering or bullets (numId 0 removes them)."""
    return any(str(value) != "0" for value in element.xpath("./w:pPr/w:numPr/w:numId/@w:val"))


def _role(style: ParagraphStyle) -> _Role:
    """A style's role from its own name and properties, else from the styles it is based on."""
    level: int | None = None
    list_item = False
    current: CharacterStyle | None = style
    for _ in range(_MAX_STYLE_CHAIN):
        if current is None:
            break
        name = (current.name or "").strip().lower()
        if level is None:
            match = _HEADING_NAME.fullmatch(name)
            if name == "title":
                level = _TITLE_LEVEL
            elif match:
                level = int(match.group(1))
            else:
                level = _outline_level(current.element)
        list_item = list_item or name.startswith("list") or _numbered(current.element)
        current = current.base_style
    return _Role(level, list_item)


def _style_roles(document: Document) -> dict[str, _Role]:
    """The role of each paragraph style, by style id."""
    return {
        style.style_id: _role(style)
        for style in document.styles
        if isinstance(style, ParagraphStyle) and style.type == WD_STYLE_TYPE.PARAGRAPH and style.style_id
    }


def _children(element: BaseOxmlElement, tag: str) -> Iterator[BaseOxmlElement]:
    """Children of ``element`` with ``tag``, looking through content controls and similar wrappers."""
    for child in element:
        if child.tag == tag:
            yield child
        elif child.tag in _BLOCK_WRAPPERS:
            yield from _children(child, tag)


def _blocks(element: BaseOxmlElement) -> Iterator[BaseOxmlElement]:
    """Paragraphs and tables directly in ``element`` (a body or cell), in document order."""
    for child in element:
        if child.tag in (_P, _TBL):
            yield child
        elif child.tag in _BLOCK_WRAPPERS:
            yield from _blocks(child)


def _paragraph_text(element: BaseOxmlElement) -> str:
    """The text of a paragraph's runs: tabs and line breaks kept, deleted text and field codes not."""
    parts: list[str] = []
    for child in element:
        if isinstance(child, CT_R):
            parts.append(child.text)
        elif child.tag in _RUN_WRAPPERS:
            parts.append(_paragraph_text(child))
    return "".join(parts)


def _grid_count(element: BaseOxmlElement, path: str, default: int) -> int:
    """A count of grid columns, at most 63; ``default`` when absent or malformed."""
    count = _number(element, path)
    return default if count is None else min(count, _MAX_SPAN)


def _cell_text(cell: BaseOxmlElement) -> str:
    """A cell's paragraphs as lines; a nested table as lines of ``|``-separated cells."""
    lines: list[str] = []
    for block in _blocks(cell):
        if block.tag == _P:
            lines.append(_paragraph_text(block))
        else:
            lines.extend(" | ".join(cells) for cells in _row_cells(block))
    return "\n".join(lines)


def _row_cells(table: BaseOxmlElement) -> Iterator[list[str]]:
    """Each row's cell texts placed in grid columns, so merged cells keep later values aligned."""
    for row in _children(table, _TR):
        values = [""] * _grid_count(row, "./w:trPr/w:gridBefore/@w:val", 0)
        for cell in _children(row, _TC):
            values.append(_cell_text(cell))
            span = _grid_count(cell, "./w:tcPr/w:gridSpan/@w:val", 1)
            values.extend([""] * (span - 1))
        yield values


@dataclass
class _Walk:
    roles: dict[str, _Role]
    headings: list[tuple[int, str]] = field(default_factory=list)
    elements: list[Element] = field(default_factory=list)

    def location(self) -> Location:
        return Location(heading_path=tuple(text for _, text in self.headings))

    def paragraph(self, element: BaseOxmlElement) -> None:
        text = _paragraph_text(element)
        style_ids = element.xpath("./w:pPr/w:pStyle/@w:val")
        role = self.roles.get(str(style_ids[0]), _Role()) if style_ids else _Role()
        level = _outline_level(element)
        level = role.level if level is None else level
        if level is not None:
            title = " ".join(clean_text(text).split())
            if title:
                while self.headings and self.headings[-1][0] >= level:
                    self.headings.pop()
                self.headings.append((level, title))
            kind = "heading"
        else:
            kind = "list_item" if role.list_item or _numbered(element) else "paragraph"
        made = make_element(text, location=self.location(), kind=kind)
        if made is not None:
            self.elements.append(made)

    def table(self, element: BaseOxmlElement) -> None:
        location = self.location()
        self.elements.extend(table_elements((values, location) for values in _row_cells(element)))


def parse_docx(data: bytes) -> list[Element]:
    """Parse a .docx file's body into elements in document order.

    Raises:
        ParseError: the file is not a readable Word document (damaged, password-protected, or
            another kind of file).
        LimitExceeded: the package would expand too far (a decompression bomb).
    """
    return read_salvaging(data, WORD, _read)


def _read(package: IO[bytes]) -> list[Element]:
    document: Document = docx.Document(package)
    walk = _Walk(_style_roles(document))
    for block in _blocks(document.element.body):
        if block.tag == _P:
            walk.paragraph(block)
        else:
            walk.table(block)
    return walk.elements
