"""CSV and TSV parsing with the stdlib `csv` module: one element per data row, under its column names.

The first row with any text is the header; every later row becomes one ``table_row`` element
whose text pairs each non-empty cell with its column name, ``name: Alice; department: Sales``,
so a row retrieved on its own still says what its values mean. `format_row` and `table_elements`
are shared with the other parsers of tables (XLSX sheets, DOCX and PPTX tables).

Row numbers are lines of the file as an editor shows them (the header is row 1 when it is the
first line); a record whose quoted field spans several lines has ``row_end`` set as well.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from cairn.errors import ParseError
from cairn.models import Element, Location

from .text import clean_text, decode_bytes, make_element, normalize_newlines

__all__ = ["column_name", "format_row", "parse_csv", "parse_tsv", "table_elements"]

# Delimiters the sniffer may choose; left open it picks letters and digits on one-column files.
_DELIMITERS = ",;\t|"
# The sniffer's regular expressions are slow on long input; the dialect shows in the first lines.
_SNIFF_CHARS = 16 * 1024
# Share of sample records that must split into the header's column count for comma to win.
_CONSISTENT_SHARE = 0.8


def column_name(name: str) -> str:
    """A header cell as one line of clean text: names label values and must not break the layout."""
    return " ".join(clean_text(name).split())


def format_row(header: Sequence[str], values: Sequence[str]) -> str:
    """The text of one table row: ``name: value`` for each non-empty cell, joined by ``; ``.

    Cells beyond the header, or under an empty header cell, are named ``column N`` (1-based).
    Values keep their inner line breaks; surrounding whitespace goes. Header names are used as
    given: `table_elements` passes them through `column_name` once per table.
    """
    pairs: list[str] = []
    for index, value in enumerate(values):
        text = value.strip()
        if not text:
            continue
        name = header[index].strip() if index < len(header) else ""
        pairs.append(f"{name or f'column {index + 1}'}: {text}")
    return "; ".join(pairs)


def table_elements(rows: Iterable[tuple[Sequence[str], Location]]) -> list[Element]:
    """The ``table_row`` elements of one table, given its rows (cell texts and location) in order.

    The first row with any text is the header and becomes no element of its own, unless it is
    the only such row: a table that is just a header still has text worth finding.
    """
    header: Sequence[str] | None = None
    header_location: Location | None = None
    elements: list[Element] = []
    for values, location in rows:
        if not any(value.strip() for value in values):
            continue
        if header is None:
            header, header_location = [column_name(value) for value in values], location
            continue
        element = make_element(format_row(header, values), location=location, kind="table_row")
        if element is not None:
            elements.append(element)
    if header is not None and header_location is not None and not elements:
        names = "; ".join(name for name in header if name)
        element = make_element(names, location=header_location, kind="table_row")
        if element is not None:
            elements.append(element)
    return elements


def _widths(sample: str, delimiter: str) -> list[int]:
    """Field counts of the complete, non-blank records in ``sample`` split at ``delimiter``."""
    if len(sample) == _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]  # the sample may end mid-record
    widths: list[int] = []
    try:
        for record in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter):
            if record:
                widths.append(len(record))
    except csv.Error:
        return []
    return widths


def _comma_is_consistent(sample: str) -> bool:
    """Whether commas split the header and most records into the same number (> 1) of fields.

    Checked before sniffing because the sniffer, scoring how regularly each character occurs,
    often prefers ``;`` or ``|`` when those appear inside values of an ordinary comma file.
    """
    widths = _widths(sample, ",")
    if not widths or widths[0] < 2:
        return False
    return Counter(widths)[widths[0]] >= _CONSISTENT_SHARE * len(widths)


def _dialect(text: str) -> type[csv.Dialect]:
    """Comma when it fits the sample, else the sniffer's guess, else comma all the same."""
    sample = text[:_SNIFF_CHARS]
    if _comma_is_consistent(sample):
        return csv.excel
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
    except csv.Error:
        return csv.excel  # one column, or no delimiter stands out


def _records(text: str, dialect: type[csv.Dialect]) -> Iterator[tuple[list[str], Location]]:
    """Each record with the lines it spans (1-based, inclusive)."""
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    last_line = 0
    try:
        for record in reader:
            first_line, last_line = last_line + 1, reader.line_num
            row_end = last_line if last_line != first_line else None
            yield record, Location(row_start=first_line, row_end=row_end)
    except csv.Error as exc:
        line = reader.line_num
        if "field larger than field limit" in str(exc):
            message = (
                f"a field starting at or before line {line} is longer than {csv.field_size_limit():,} characters, "
                "the CSV reader's limit; this is usually a quote that is never closed, so check the quoting "
                "around that line (or store long texts as documents of their own)"
            )
        else:
            message = f"the file is not valid CSV at line {line} ({exc}); check its quoting and delimiters"
        raise ParseError(message) from exc


def _parse(data: bytes, dialect: type[csv.Dialect] | None) -> list[Element]:
    # Cleaning removes NUL (which the csv module rejects) but keeps every line, so row numbers hold.
    text = clean_text(normalize_newlines(decode_bytes(data)))
    return table_elements(_records(text, dialect or _dialect(text)))


def parse_csv(data: bytes) -> list[Element]:
    """Parse comma-separated values (or a sniffed delimiter: ``;``, tab, ``|``) into row elements.

    Raises:
        ParseError: a field exceeds the csv module's size limit (usually an unclosed quote).
    """
    return _parse(data, None)


def parse_tsv(data: bytes) -> list[Element]:
    """Parse tab-separated values into row elements; quoted fields are honoured as Excel writes them.

    Raises:
        ParseError: a field exceeds the csv module's size limit (usually an unclosed quote).
    """
    return _parse(data, csv.excel_tab)
