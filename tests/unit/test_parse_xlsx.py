"""Excel parsing: one element per row per sheet, Excel row numbers, readable values, damaged files."""

from __future__ import annotations

import datetime
import io
import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import docx
import openpyxl  # type: ignore[import-untyped]
import pytest
import xlsxwriter  # type: ignore[import-untyped]

from cairn.errors import ParseError
from cairn.models import Element
from cairn.parse.salvage import collecting
from cairn.parse.xlsx import parse_xlsx

REAL = Path(__file__).parent.parent / "fixtures" / "real" / "formats"


def _xlsx(*sheets: tuple[str, list[list[object]]]) -> bytes:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets:
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


def _rewrite(data: bytes, member: str, change: Callable[[bytes], bytes]) -> bytes:
    """The same package with one member's bytes changed (to forge what no writer would produce)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            target.writestr(info, change(content) if info.filename == member else content)
    return output.getvalue()


def _summary(elements: list[Element]) -> list[tuple[str | None, int | None, str]]:
    return [(e.location.sheet, e.location.row_start, e.text) for e in elements]


def test_rows_become_elements_under_the_header_with_sheet_and_row() -> None:
    """Each sheet's first row names the columns; each later row is one element at its Excel row."""
    data = _xlsx(
        ("Staff", [["name", "department"], ["Alice", "Sales"], ["Bob", "Support"]]),
        ("Sites", [["city"], ["Oslo"]]),
    )

    elements = parse_xlsx(data)

    assert _summary(elements) == [
        ("Staff", 2, "name: Alice; department: Sales"),
        ("Staff", 3, "name: Bob; department: Support"),
        ("Sites", 2, "city: Oslo"),
    ]
    assert all(e.kind == "table_row" for e in elements)


def test_leading_and_inner_empty_rows_keep_excel_row_numbers() -> None:
    """A header below empty rows, and gaps between rows, do not shift the row numbers Excel shows."""
    data = _xlsx(("S", [[], [None, None], [None, "name", "age"], [None, "Alice", 30], [], [], [None, "Bob", 41]]))

    assert _summary(parse_xlsx(data)) == [("S", 4, "name: Alice; age: 30"), ("S", 7, "name: Bob; age: 41")]


def test_values_are_rendered_readably() -> None:
    """Whole floats lose ``.0``, dates read ISO (time only when present), booleans TRUE/FALSE."""
    header: list[object] = ["int", "float", "whole", "date", "stamp", "time", "flag", "big"]
    row = [
        42,
        0.25,
        50000.0,
        datetime.datetime(2021, 3, 1),
        datetime.datetime(2022, 1, 2, 14, 30),
        datetime.time(9, 5),
        True,
        1e20,
    ]

    (element,) = parse_xlsx(_xlsx(("S", [header, row])))

    assert element.text == (
        "int: 42; float: 0.25; whole: 50000; date: 2021-03-01; stamp: 2022-01-02 14:30:00; "
        "time: 09:05:00; flag: TRUE; big: 1e+20"
    )


def test_formulas_give_their_cached_values() -> None:
    """A formula cell reads as the value Excel last calculated, not as the formula."""
    output = io.BytesIO()
    workbook = xlsxwriter.Workbook(output, {"in_memory": True})
    sheet = workbook.add_worksheet("Totals")
    sheet.write_row(0, 0, ["a", "b", "sum"])
    sheet.write_row(1, 0, [2, 3])
    sheet.write_formula(1, 2, "=A2+B2", None, 5)
    workbook.close()

    assert [e.text for e in parse_xlsx(output.getvalue())] == ["a: 2; b: 3; sum: 5"]


def test_wrong_declared_dimensions_do_not_hide_rows() -> None:
    """Rows beyond the sheet's (often wrong) declared dimension are still read."""
    data = _xlsx(("S", [["k"], ["one"], ["two"], ["three"]]))
    forged = _rewrite(data, "xl/worksheets/sheet1.xml", lambda xml: xml.replace(b'ref="A1:A4"', b'ref="A1:A2"'))

    assert forged != data
    assert [e.text for e in parse_xlsx(forged)] == ["k: one", "k: two", "k: three"]


def test_cells_beyond_the_header_get_numbered_names() -> None:
    """A value in a column the header does not name is ``column N``."""
    data = _xlsx(("S", [["name"], ["Alice", None, "note"]]))

    assert [e.text for e in parse_xlsx(data)] == ["name: Alice; column 3: note"]


def test_empty_workbook_has_no_elements() -> None:
    """Sheets without values yield nothing (the dispatcher reports the file as empty)."""
    assert parse_xlsx(_xlsx(("Empty", []))) == []


def test_forged_row_number_fails_fast() -> None:
    """A row numbered far beyond Excel's last row is reported as damage, quickly, not streamed."""
    data = _xlsx(("S", [["k"], ["v"]]))
    forged = _rewrite(
        data,
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(b'<row r="2"', b'<row r="2000000000"').replace(b'r="A2"', b'r="A2000000000"'),
    )

    started = time.perf_counter()
    with pytest.raises(ParseError, match="beyond Excel's last row"):
        parse_xlsx(forged)

    assert time.perf_counter() - started < 5


def test_a_sheet_cut_off_keeps_its_rows_before_the_cut_and_says_so() -> None:
    """A sheet cut off keeps the rows before the cut; the other sheets are whole; a warning names the part."""
    rows: list[list[object]] = [["id", "name"], *[[n, f"row {n}"] for n in range(1, 201)]]
    data = _xlsx(("First", rows), ("Second", [["k"], ["v"]]))
    broken = _rewrite(data, "xl/worksheets/sheet1.xml", lambda xml: xml[: len(xml) // 2])

    with collecting() as warnings:
        elements = parse_xlsx(broken)

    first = [e for e in elements if e.location.sheet == "First"]
    assert 20 < len(first) < 200
    assert [e.location.row_start for e in first] == list(range(2, 2 + len(first)))
    assert [e.location.sheet for e in elements if e.location.sheet == "Second"] == ["Second"]
    assert len(warnings) == 1
    assert warnings[0].startswith("the part xl/worksheets/sheet1.xml is damaged (its XML is damaged")


def test_a_workbook_without_its_workbook_part_is_a_parse_error() -> None:
    """The workbook part is the package's main part: cut to nothing readable, the file fails, naming it."""
    data = _xlsx(("S", [["k"], ["v"]]))
    broken = _rewrite(data, "xl/workbook.xml", lambda xml: b"\x00" * len(xml))

    with pytest.raises(ParseError, match=r"not a valid Excel \.xlsx workbook .*xl/workbook\.xml") as caught:
        parse_xlsx(broken)

    assert caught.value.__cause__ is not None


def test_truncated_xlsx_is_a_parse_error_that_says_what_to_do() -> None:
    """A cut-off file is reported as not a valid .xlsx, with advice to re-save it."""
    data = _xlsx(("S", [["k"], ["v"]]))

    with pytest.raises(ParseError, match=r"not a valid Excel \.xlsx workbook.*re-save it"):
        parse_xlsx(data[: len(data) - 200])


def test_a_word_document_is_not_taken_for_a_workbook() -> None:
    """A .docx renamed to .xlsx fails clearly instead of yielding nothing."""
    output = io.BytesIO()
    docx.Document().save(output)

    with pytest.raises(ParseError, match=r"not a valid Excel \.xlsx workbook"):
        parse_xlsx(output.getvalue())


def test_real_distro_info_workbook() -> None:
    """Ubuntu releases and time zones: dates as ISO text, versions as written, the phrase."""
    data = (REAL / "distro-info-ubuntu.xlsx").read_bytes()
    phrase = json.loads((REAL / "phrases-office.json").read_text())["distro-info-ubuntu.xlsx"]

    elements = parse_xlsx(data)

    assert _summary(elements)[0] == (
        "ubuntu",
        2,
        "version: 4.10; codename: Warty Warthog; series: warty; created: 2004-03-05; release: 2004-10-20; "
        "eol: 2006-04-30",
    )
    assert {e.location.sheet for e in elements} == {"ubuntu", "zone1970"}
    assert phrase in " ".join(" ".join(e.text for e in elements).split())
