"""Excel (.xlsx, .xlsm) parsing with openpyxl in read-only mode: one element per data row, per sheet.

Each worksheet is a table: its first row with any value is the header, and every later
non-empty row becomes one ``table_row`` element, ``name: value; ...`` (see `tabular`), located
by sheet name and the row number Excel shows. Values are the ones Excel last calculated
(formulas are not evaluated); dates read ``2021-03-01`` (with `` 14:30:00`` when they have a
time), whole numbers have no ``.0``, booleans read ``TRUE``/``FALSE``. Chart sheets are skipped.

Read-only mode streams each sheet's XML, so memory stays bounded by the widest row rather than
the sheet; the sheet's declared dimensions are ignored because writers often get them wrong.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import IO, Any

import openpyxl  # type: ignore[import-untyped]

from cairn.errors import ParseError
from cairn.models import Element, Location

from .ooxml import OfficeFormat, read_salvaging
from .tabular import table_elements

__all__ = ["parse_xlsx"]

EXCEL = OfficeFormat("Excel .xlsx workbook", ".xlsx", "Excel or LibreOffice Calc")

# Excel's last row; openpyxl fills gaps between rows, so a forged row number far beyond it would
# otherwise stream empty rows for a very long time.
_MAX_ROW = 1_048_576
# Floats up to this size print exactly as integers; beyond it they keep their float form.
_EXACT_INTEGER = 2**53


def _format_cell(value: object) -> str:
    """A cell value as text, the way a reader would expect to see it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < _EXACT_INTEGER:
            return str(int(value))
        return repr(value)  # the shortest text that reads back as the same float
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, datetime.time):
        return value.isoformat(timespec="seconds")
    return str(value)  # str, int, date, timedelta, error codes such as #DIV/0!


def _rows(sheet: Any) -> Iterator[tuple[list[str], Location]]:
    """Each row with a value, numbered as Excel numbers it (openpyxl fills gaps with empty rows)."""
    sheet.reset_dimensions()
    for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
        if number > _MAX_ROW:
            raise ParseError(
                f"sheet {sheet.title!r} has rows beyond Excel's last row ({_MAX_ROW:,}); "
                "the workbook is damaged, so re-save it from Excel or LibreOffice Calc"
            )
        if any(value is not None for value in row):
            yield [_format_cell(value) for value in row], Location(sheet=sheet.title, row_start=number)


def parse_xlsx(data: bytes) -> list[Element]:
    """Parse every worksheet of an .xlsx/.xlsm workbook into row elements, sheet by sheet.

    Raises:
        ParseError: the file is not a readable workbook (damaged, password-protected, or another
            kind of file).
        LimitExceeded: the package would expand too far (a decompression bomb).
    """
    return read_salvaging(data, EXCEL, _read)


def _read(package: IO[bytes]) -> list[Element]:
    # Sheets are parsed lazily, so damage inside one surfaces while its rows are read.
    workbook = openpyxl.load_workbook(package, read_only=True, data_only=True, keep_links=False)
    try:
        elements: list[Element] = []
        for sheet in workbook.worksheets:
            elements.extend(table_elements(_rows(sheet)))
        return elements
    finally:
        workbook.close()
