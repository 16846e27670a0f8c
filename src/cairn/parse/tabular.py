"""CSV and TSV parsing with the stdlib `csv` module: one element per data row, under its column names.

The first row with any text is the header; every later row becomes one ``table_row`` element
whose text pairs each non-empty cell with its column name, ``name: Alice; department: Sales``,
so a row retrieved on its own still says what its values mean. `format_row` and `table_elements`
are shared with the other parsers of tables (XLSX sheets, DOCX and PPTX tables).

Row numbers are lines of the file as an editor shows them (the header is row 1 when it is the
first line); a record whose quoted field spans several lines has ``row_end`` set as well.

Damage costs only its row, with a warning naming it (`cairn.parse.salvage`): a row wider than
the header keeps its extra values as ``column N``; a stray quote that would swallow the rows
after it is read as a plain character instead.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from cairn.models import Element, Location

from .salvage import warn
from .text import clean_text, decode_bytes, make_element, normalize_newlines

__all__ = ["column_name", "format_row", "parse_csv", "parse_tsv", "table_elements"]

# Delimiters the sniffer may choose; left open it picks letters and digits on one-column files.
_DELIMITERS = ",;\t|"
# The sniffer's regular expressions are slow on long input; the dialect shows in the first lines.
_SNIFF_CHARS = 16 * 1024
# Share of sample records that must split into the header's column count for comma to win.
_CONSISTENT_SHARE = 0.8
# Rows with stray quotes re-read one by one before the rest of the file is read without quoting.
_MAX_QUOTE_REPAIRS = 50


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
    """Each record with the lines it spans (1-based, inclusive), salvaging rows around bad quoting.

    A quote that opens a field and is never closed (or is closed only by another stray quote
    rows later) makes the reader swallow the rows after it into one value. Such a record, one
    spanning lines with an odd number of quotes, or with a width other than the header's, is read
    again line by line with its quotes taken as plain characters, and a warning names its row.
    """
    lines = text.split("\n")
    quote = dialect.quotechar or '"'
    done, width, repairs = 0, None, 0  # lines consumed; the header's field count; rows re-read
    while done < len(lines):
        # Each repair re-reads the rest of the file: past a bound, the rest is read without quoting.
        quoting = csv.QUOTE_NONE if repairs >= _MAX_QUOTE_REPAIRS else dialect.quoting
        reader = csv.reader(io.StringIO("\n".join(lines[done:]), newline=""), dialect, quoting=quoting)
        last, stray, reason = 0, None, "a quote opened there is never closed"
        try:
            for record in reader:
                first, last = last + 1, reader.line_num
                if width is None and any(value.strip() for value in record):
                    width = len(record)
                if last > first and _is_runaway(record, lines[done + first - 1 : done + last], width, quote):
                    stray = first
                    break
                if width is not None and len(record) > width and last == first:
                    warn(
                        f"row {done + first} has {len(record)} fields where the header has {width}; "
                        f"its values beyond the header were kept as column {width + 1} and on"
                    )
                yield record, Location(row_start=done + first, row_end=done + last if last != first else None)
        except csv.Error as exc:
            stray = last + 1
            if "field larger than field limit" not in str(exc):
                reason = f"it is not valid CSV ({exc})"
        if stray is None:
            return
        row, repairs = done + stray, repairs + 1
        warn(f"row {row}: {reason}; the row was read with its quotes as plain characters")
        yield _literal(lines[row - 1], dialect), Location(row_start=row)
        done = row


def _is_runaway(record: list[str], lines: list[str], width: int | None, quote: str) -> bool:
    """Whether a record spanning ``lines`` is rows swallowed by a stray quote, not one multi-line value."""
    return sum(line.count(quote) for line in lines) % 2 == 1 or (width is not None and len(record) != width)


def _literal(line: str, dialect: type[csv.Dialect]) -> list[str]:
    """The fields of one line split at the delimiter, quotes kept as plain characters."""
    return line.split(dialect.delimiter)


def _parse(data: bytes, dialect: type[csv.Dialect] | None) -> list[Element]:
    # Cleaning removes NUL (which the csv module rejects) but keeps every line, so row numbers hold.
    text = clean_text(normalize_newlines(decode_bytes(data)))
    return table_elements(_records(text, dialect or _dialect(text)))


def parse_csv(data: bytes) -> list[Element]:
    """Parse comma-separated values (or a sniffed delimiter: ``;``, tab, ``|``) into row elements.

    Ragged rows and stray quotes are salvaged with a warning naming the row.
    """
    return _parse(data, None)


def parse_tsv(data: bytes) -> list[Element]:
    """Parse tab-separated values into row elements; quoted fields are honoured as Excel writes them.

    Ragged rows and stray quotes are salvaged with a warning naming the row.
    """
    return _parse(data, csv.excel_tab)
