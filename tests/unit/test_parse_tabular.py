"""CSV/TSV parsing: one element per data row under its column names, with the file's row numbers."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.models import Element, Location
from cairn.parse.salvage import collecting
from cairn.parse.tabular import format_row, parse_csv, parse_tsv, table_elements

REAL = Path(__file__).parent.parent / "fixtures" / "real" / "formats"


def _rows(elements: list[Element]) -> list[tuple[str, int | None, int | None]]:
    return [(e.text, e.location.row_start, e.location.row_end) for e in elements]


def test_each_data_row_is_one_element_named_by_the_header() -> None:
    """The first row names the columns; every later row pairs its values with those names."""
    data = b"name,department,start\nAlice,Sales,2021-03-01\nBob,Support,2022-11-15\n"

    elements = parse_csv(data)

    assert _rows(elements) == [
        ("name: Alice; department: Sales; start: 2021-03-01", 2, None),
        ("name: Bob; department: Support; start: 2022-11-15", 3, None),
    ]
    assert all(e.kind == "table_row" for e in elements)


def test_empty_cells_are_skipped_and_extra_cells_get_numbered_names() -> None:
    """A blank value says nothing; a value beyond the header (or under a blank name) is `column N`."""
    data = b"name,,team\nAlice,,\nBob,x,,late,\n"

    assert [e.text for e in parse_csv(data)] == ["name: Alice", "name: Bob; column 2: x; column 4: late"]


def test_quoted_multiline_field_spans_rows_and_later_rows_keep_file_line_numbers() -> None:
    """A record whose quoted field holds line breaks covers several lines: row_start..row_end."""
    data = b'id,note\n1,"first line\nsecond line"\n2,plain\n'

    assert _rows(parse_csv(data)) == [
        ("id: 1; note: first line\nsecond line", 2, 3),
        ("id: 2; note: plain", 4, None),
    ]


def test_blank_lines_are_skipped_but_counted() -> None:
    """Blank lines and rows of empty cells yield nothing, yet row numbers stay the file's."""
    data = b"\nname,age\n\n,\nAlice,30\r\n\r\nBob,41"

    assert _rows(parse_csv(data)) == [("name: Alice; age: 30", 5, None), ("name: Bob; age: 41", 7, None)]


def test_semicolon_csv_is_sniffed() -> None:
    """A ``;``-separated file (decimal commas included) is split at the semicolons."""
    data = "produit;prix\ncafé;1,50\nthé;2,25\n".encode("cp1252")

    assert [e.text for e in parse_csv(data)] == ["produit: café; prix: 1,50", "produit: thé; prix: 2,25"]


def test_comma_wins_when_other_delimiters_only_appear_inside_values() -> None:
    """Values full of ``;`` and ``|`` do not fool the delimiter guess when commas split evenly."""
    data = b"a,b\nx;y|z,1;2\np;q|r,3;4\nm;n|o,5;6\n"

    assert [e.text for e in parse_csv(data)] == ["a: x;y|z; b: 1;2", "a: p;q|r; b: 3;4", "a: m;n|o; b: 5;6"]


def test_single_column_file_falls_back_to_comma() -> None:
    """With no delimiter to find, the file is one column named by its first line."""
    assert [e.text for e in parse_csv(b"word\nalpha\nbeta\n")] == ["word: alpha", "word: beta"]


def test_header_only_file_still_yields_its_names() -> None:
    """A table with nothing but a header row keeps that text, as row 1."""
    assert _rows(parse_csv(b"alpha,beta,,gamma\n")) == [("alpha; beta; gamma", 1, None)]


def test_tsv_splits_at_tabs_only() -> None:
    """TSV columns are separated by tabs; commas stay inside values."""
    data = b"city\tnote\nParis\tbig, old\nOslo\t\n"

    assert _rows(parse_tsv(data)) == [("city: Paris; note: big, old", 2, None), ("city: Oslo", 3, None)]


def test_invalid_utf8_is_decoded_not_rejected() -> None:
    """Bytes that are not UTF-8 fall back to cp1252, so a Windows export still reads right."""
    data = b"name,city\nJos\xe9,M\xfcnchen\n"

    assert [e.text for e in parse_csv(data)] == ["name: José; city: München"]


def test_utf16_with_bom_is_decoded() -> None:
    """A UTF-16 export with a byte-order mark (as Excel writes "Unicode text") is read."""
    data = "name\tcity\nZoë\tKraków\n".encode("utf-16")

    assert [e.text for e in parse_tsv(data)] == ["name: Zoë; city: Kraków"]


def test_nul_bytes_are_dropped_instead_of_crashing_the_reader() -> None:
    """NUL bytes, which the csv module rejects, are removed before reading."""
    assert [e.text for e in parse_csv(b"na\x00me,age\nAl\x00ice,3\x000\n")] == ["name: Alice; age: 30"]


def test_field_beyond_the_csv_size_limit_is_read_literally_with_a_warning() -> None:
    """An over-long field (typically an unclosed quote) costs its row only; the warning says what to check."""
    data = b'id,note\n1,"' + b"x" * (csv.field_size_limit() + 10) + b"\n2,fine\n"

    with collecting() as warnings:
        elements = parse_csv(data)

    assert [e.location.row_start for e in elements] == [2, 3]
    assert elements[1].text == "id: 2; note: fine"
    assert warnings == [
        "row 2: a quote opened there is never closed; the row was read with its quotes as plain characters"
    ]


def test_unclosed_quote_at_end_of_file_keeps_the_text() -> None:
    """A quote that is never closed no longer swallows the rest of the file: each row keeps its own values."""
    with collecting() as warnings:
        elements = parse_csv(b'a,b\n"open,2\n3,4\n')

    assert _rows(elements) == [('a: "open; b: 2', 2, None), ("a: 3; b: 4", 3, None)]
    assert len(warnings) == 1


def test_ragged_rows_keep_every_value() -> None:
    """Rows shorter or longer than the header keep the values they have."""
    data = b"a,b,c\n1\n1,2,3,4,5\n,,3\n"

    assert [e.text for e in parse_csv(data)] == ["a: 1", "a: 1; b: 2; c: 3; column 4: 4; column 5: 5", "c: 3"]


def test_format_row_is_the_shared_row_formatter() -> None:
    """`format_row` pairs names and values; whitespace around values goes, inner line breaks stay."""
    assert format_row(["name", "note"], ["  Ann ", "two\nlines"]) == "name: Ann; note: two\nlines"


def test_table_elements_uses_first_non_empty_row_as_header() -> None:
    """Leading empty rows are skipped before the header; each row keeps the location it came with."""
    rows = [
        ([" ", ""], Location(row_start=1)),
        (["k", "v"], Location(row_start=2)),
        (["a", "1"], Location(row_start=3)),
    ]

    assert _rows(table_elements(rows)) == [("k: a; v: 1", 3, None)]


def test_real_debian_release_table() -> None:
    """distro-info-data's debian.csv: 22 releases, each with its codename, on its own file line."""
    data = (REAL / "distro-info-debian.csv").read_bytes()
    phrase = json.loads((REAL / "phrases-office.json").read_text())["distro-info-debian.csv"]

    elements = parse_csv(data)

    assert len(elements) == len(data.decode().splitlines()) - 1
    assert elements[0].location.row_start == 2
    bookworm = next(e for e in elements if "Bookworm" in e.text)
    assert bookworm.text.startswith("version: 12; codename: Bookworm; series: bookworm")
    assert phrase in " ".join(" ".join(e.text for e in elements).split())


_CELL = st.text(alphabet=st.sampled_from("ab Z9,;|\"'\n\t-:"), max_size=8)
_NAME = st.text(alphabet=st.sampled_from("abcdefgh XY"), min_size=1, max_size=6).filter(lambda s: s.strip())


@st.composite
def _tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    width = draw(st.integers(min_value=2, max_value=5))
    header = draw(st.lists(_NAME, min_size=width, max_size=width, unique_by=lambda s: " ".join(s.split())))
    rows = draw(st.lists(st.lists(_CELL, min_size=width, max_size=width), max_size=8))
    return header, rows


@settings(max_examples=50, deadline=None)
@given(_tables())
def test_generated_tables_lose_no_value_and_keep_row_numbers(table: tuple[list[str], list[list[str]]]) -> None:
    """For any written table: each non-empty cell appears as ``name: value`` in its own row's element,
    rows with text are never lost, and row numbers are the file's lines, valid and increasing.
    """
    header, rows = table
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)

    elements = parse_csv(buffer.getvalue().encode())

    expected: list[tuple[list[str], int, int]] = []
    line = 2
    for row in rows:
        span = 1 + sum(value.count("\n") for value in row)
        pairs = [f"{' '.join(name.split())}: {value.strip()}" for name, value in zip(header, row, strict=True)]
        if any(value.strip() for value in row):
            expected.append(([p for p, v in zip(pairs, row, strict=True) if v.strip()], line, line + span - 1))
        line += span
    if not expected:  # a table that is only a header keeps the names, as row 1
        expected.append(([" ".join(name.split()) for name in header], 1, 1))
    assert len(elements) == len(expected)
    for element, (pairs, first, last) in zip(elements, expected, strict=True):
        assert all(pair in element.text for pair in pairs)
        assert element.location.row_start == first
        assert (element.location.row_end or first) == last
    starts = [e.location.row_start or 0 for e in elements]
    assert starts == sorted(set(starts))
    assert all(start >= 1 for start in starts)
