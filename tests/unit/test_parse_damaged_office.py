"""Office packages and PDFs with local damage: everything readable is kept, and each repair is named.

The damage is made the way it happens to real files: a bad sector inside one member's compressed bytes
(its checksum no longer matches), a part cut short by an interrupted copy, a member lost from the
archive, a PDF page object overwritten. The documents are the real fixtures under tests/fixtures/real.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.unit.pdf_fixture import build_pdf

from cairn.errors import ParseError
from cairn.models import Element
from cairn.parse.docx import parse_docx
from cairn.parse.pdf import parse_pdf
from cairn.parse.pptx import parse_pptx
from cairn.parse.salvage import collecting
from cairn.parse.xlsx import parse_xlsx

REAL = Path(__file__).parent.parent / "fixtures" / "real"
FORMATS = REAL / "formats"
DOCX = (FORMATS / "systemd-uids-gids.docx").read_bytes()
PPTX = (FORMATS / "zstd-readme.pptx").read_bytes()
XLSX = (FORMATS / "distro-info-ubuntu.xlsx").read_bytes()


def _rewritten(package: bytes, member: str, change: Callable[[bytes], bytes | None]) -> bytes:
    """The package with one member's content changed (``None``: the member lost)."""
    source = zipfile.ZipFile(io.BytesIO(package))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            changed = change(content) if info.filename == member else content
            if changed is not None:
                target.writestr(info.filename, changed)
    return out.getvalue()


def _bad_sector(package: bytes, member: str) -> bytes:
    """The package with 16 bytes inverted in the middle of one member's stored (compressed) data."""
    data = bytearray(package)
    info = zipfile.ZipFile(io.BytesIO(package)).getinfo(member)
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    middle = info.header_offset + 30 + name_length + extra_length + info.compress_size // 2
    for offset in range(middle, middle + 16):
        data[offset] ^= 0xFF
    return bytes(data)


def _cut_in_half(content: bytes) -> bytes:
    return content[: len(content) // 2]


def _parsed(parse: Callable[[bytes], list[Element]], data: bytes) -> tuple[list[str], list[str]]:
    with collecting() as warnings:
        elements = parse(data)
    return [element.text for element in elements], warnings


def test_docx_with_a_damaged_styles_part_keeps_every_paragraph() -> None:
    """A bad sector in word/styles.xml costs the styles, not the text; the warning names the part."""
    whole, _ = _parsed(parse_docx, DOCX)

    texts, warnings = _parsed(parse_docx, _bad_sector(DOCX, "word/styles.xml"))

    assert texts == whole
    assert warnings == [
        "the part word/styles.xml could not be read (its bytes do not match their checksum); it was left out"
    ]


def test_docx_missing_its_numbering_part_is_read_whole() -> None:
    """A member lost from the archive (still named by a relationship) is left out and reported."""
    whole, _ = _parsed(parse_docx, DOCX)

    texts, warnings = _parsed(parse_docx, _rewritten(DOCX, "word/numbering.xml", lambda _: None))

    assert texts == whole
    assert warnings == [
        "the part word/numbering.xml named by word/_rels/document.xml.rels is missing from the package; it was left out"
    ]


def test_docx_whose_body_is_cut_short_keeps_the_paragraphs_before_the_cut() -> None:
    """The main part cut in half: the paragraphs before the cut are read, in order, and the damage is named."""
    whole, _ = _parsed(parse_docx, DOCX)

    texts, warnings = _parsed(parse_docx, _rewritten(DOCX, "word/document.xml", _cut_in_half))

    assert 10 < len(texts) < len(whole)
    assert texts[:-1] == whole[: len(texts) - 1]  # the last one may end where the cut fell
    assert len(warnings) == 1
    assert warnings[0].startswith("the part word/document.xml is damaged (its XML is damaged")
    assert warnings[0].endswith("the text before the damage was kept")


def test_pptx_with_one_damaged_slide_keeps_the_other_slides() -> None:
    """A bad sector in one slide loses that slide only; the presentation's other slides are read."""
    with collecting():
        whole = parse_pptx(PPTX)
    slide_five = [element.text for element in whole if element.location.slide == 5]

    with collecting() as warnings:
        elements = parse_pptx(_bad_sector(PPTX, "ppt/slides/slide5.xml"))

    texts = [element.text for element in elements]
    assert slide_five
    assert not set(slide_five) & set(texts)
    assert texts == [element.text for element in whole if element.location.slide != 5]
    assert len(warnings) == 1
    assert warnings[0].startswith("the part ppt/slides/slide5.xml could not be read")


def test_xlsx_with_a_shared_strings_table_cut_short_keeps_the_rows() -> None:
    """Cells whose shared strings were lost read as empty; every row is kept and the numbers stay right."""
    whole, _ = _parsed(parse_xlsx, XLSX)

    texts, warnings = _parsed(parse_xlsx, _rewritten(XLSX, "xl/sharedStrings.xml", _cut_in_half))

    assert 0.4 * len(whole) < len(texts) <= len(whole)
    assert set(texts) & set(whole)
    assert warnings
    assert warnings[0].startswith("the part xl/sharedStrings.xml is damaged")


def test_office_file_without_a_readable_main_part_fails_naming_it() -> None:
    """Nothing of the main part readable: the whole file fails, quoting the damage and what to do."""
    broken = _rewritten(DOCX, "word/document.xml", lambda content: b"\x00" * len(content))

    with pytest.raises(ParseError, match=r"not a valid Word \.docx document .*word/document\.xml.*re-save it"):
        parse_docx(broken)


def _paragraphs_of(text: str, count: int) -> list[list[str]]:
    """The first ``count`` paragraphs of a real text, each as lines of at most 80 characters."""
    paragraphs = [" ".join(block.split()) for block in text.split("\n\n") if block.strip()]
    pages: list[list[str]] = []
    for paragraph in paragraphs[:count]:
        words, lines, line = paragraph.split(), [], ""
        for word in words:
            if len(line) + len(word) + 1 > 80:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        lines.append(line)
        pages.append(lines[:40])
    return pages


def test_pdf_with_one_page_object_overwritten_keeps_the_other_pages() -> None:
    """A page object overwritten (as by a bad sector) loses that page only, with a warning naming it."""
    paragraphs = _paragraphs_of((REAL / "docs" / "apache-2.0.txt").read_text(), 4)
    good = build_pdf([[paragraph] for paragraph in paragraphs])
    page_two = good.index(b"6 0 obj\n") + len(b"6 0 obj\n")
    end = good.index(b"\nendobj", page_two)
    damaged = good[:page_two] + b"\x00" * (end - page_two) + good[end:]

    with collecting() as warnings:
        elements = parse_pdf(damaged)

    assert sorted({element.location.page for element in elements}) == [1, 3, 4]
    assert warnings == ["page 2 could not be loaded (Failed to load page); it was left out"]


def test_pdf_with_no_readable_page_fails_quoting_the_first_problem() -> None:
    """Every page object damaged: nothing readable, so the file fails and says why."""
    good = build_pdf([[["one page of text here"]]])
    start = good.index(b"4 0 obj\n") + len(b"4 0 obj\n")
    end = good.index(b"\nendobj", start)
    damaged = good[:start] + b"\x00" * (end - start) + good[end:]

    with pytest.raises(ParseError, match=r"no page of the PDF could be read \(page 1 could not be loaded"):
        parse_pdf(damaged)
