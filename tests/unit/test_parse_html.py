"""HTML parsing: visible text only, heading paths, block kinds, table rows and robustness."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from cairn.parse import parse_document
from cairn.parse.html import parse_html

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parse"


class _VisibleWords(HTMLParser):
    """An independent oracle: the words of an HTML page outside head/script/style/noscript."""

    hidden = frozenset({"head", "script", "style", "noscript", "template", "svg"})

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.words: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.hidden:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.hidden:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth == 0:
            self.words.update(re.findall(r"[A-Za-z0-9]+", data))


def _texts(html: bytes) -> list[tuple[str, str]]:
    return [(e.kind, e.text) for e in parse_html(html)]


def test_script_style_and_head_are_dropped() -> None:
    """Text in <head>, <script>, <style>, <noscript> and <template> never becomes an element."""
    html = (
        b"<html><head><title>Title words</title><style>.a{color:red}</style></head>"
        b"<body><script>var secret = 1;</script><p>Shown</p><noscript>enable js</noscript>"
        b"<template><p>later</p></template><style>p{}</style><svg><text>chart</text></svg></body></html>"
    )

    assert _texts(html) == [("paragraph", "Shown")]


def test_heading_path_nests_and_pops() -> None:
    """h1–h6 build the heading path; a heading of level n closes open headings of level n or deeper."""
    html = b"<h1>A</h1><p>a1</p><h2>B</h2><p>b1</p><h4>C</h4><p>c1</p><h3>D</h3><p>d1</p><h1>E</h1><p>e1</p>"

    paths = {e.text: e.location.heading_path for e in parse_html(html) if e.kind == "paragraph"}

    assert paths == {
        "a1": ("A",),
        "b1": ("A", "B"),
        "c1": ("A", "B", "C"),
        "d1": ("A", "B", "D"),
        "e1": ("E",),
    }


def test_headings_are_elements_with_inline_markup_reduced() -> None:
    """A heading is a `heading` element; inline tags inside it do not split its words."""
    elements = parse_html(b"<h1>Quick <em>start</em> guide</h1><h2>Inst<b>all</b></h2>")

    assert [(e.kind, e.text, e.location.heading_path) for e in elements] == [
        ("heading", "Quick start guide", ("Quick start guide",)),
        ("heading", "Install", ("Quick start guide", "Install")),
    ]


def test_table_rows_join_cells_with_pipes() -> None:
    """Each <tr> is one `table_row` element with its cells joined by ' | '."""
    html = (
        b"<table><caption>Staff</caption><tr><th>Name</th><th>Role</th></tr>"
        b"<tr><td>Ada</td><td><p>Pilot</p><p>Lead</p></td></tr><tr><td></td><td></td></tr></table>"
    )

    assert _texts(html) == [
        ("caption", "Staff"),
        ("table_row", "Name | Role"),
        ("table_row", "Ada | Pilot Lead"),
    ]


def test_block_kinds_and_nested_lists() -> None:
    """li, blockquote, pre, dt/dd and figcaption map to their kinds; nested list items stay separate."""
    html = (
        b"<ul><li>outer <ul><li>inner</li></ul> tail</li></ul>"
        b"<blockquote><p>quoted</p></blockquote>"
        b"<pre>  def f():\n      return 1</pre>"
        b"<dl><dt>Term</dt><dd>Meaning</dd></dl>"
        b"<figure><figcaption>Figure one</figcaption></figure>"
    )

    assert _texts(html) == [
        ("list_item", "outer"),
        ("list_item", "inner"),
        ("list_item", "tail"),
        ("quote", "quoted"),
        ("code", "  def f():\n      return 1"),
        ("definition", "Term"),
        ("definition", "Meaning"),
        ("caption", "Figure one"),
    ]


def test_bare_text_in_containers_becomes_paragraphs() -> None:
    """Text directly inside body/div/section, outside any child block, is kept as paragraphs."""
    html = b"<body>loose start<div>div text<p>inner</p>after inner</div><section>sect</section>end</body>"

    assert _texts(html) == [
        ("paragraph", "loose start"),
        ("paragraph", "div text"),
        ("paragraph", "inner"),
        ("paragraph", "after inner"),
        ("paragraph", "sect"),
        ("paragraph", "end"),
    ]


def test_whitespace_is_normalised_and_br_kept_as_newline() -> None:
    """Runs of whitespace collapse to one space; <br> becomes a line break; entities decode."""
    html = b"<p>  many   spaces\n\tand\nlines &amp; more<br>  second   line </p>"

    assert _texts(html) == [("paragraph", "many spaces and lines & more\nsecond line")]


def test_zero_width_characters_from_entities_are_stripped() -> None:
    """Zero-width characters written as entities are removed from the text."""
    assert _texts(b"<p>zero&#8203;width&#xFEFF; joiner&zwj;s</p>") == [("paragraph", "zerowidth joiners")]


def test_malformed_html_is_parsed_without_error() -> None:
    """Unclosed, misnested and stray tags are repaired, and their text is still found."""
    html = b"<div><p>one<p>two<li>three</div></span><b><i>four</b></i><table><td>five<tr><td>six"

    texts = " ".join(e.text for e in parse_html(html))

    for word in ("one", "two", "three", "four", "five", "six"):
        assert word in texts


def test_deeply_nested_markup_does_not_exhaust_the_stack() -> None:
    """Thousands of nested elements parse (the walk is iterative, not recursive)."""
    html = b"<div>" * 5000 + b"deep text" + b"</div>" * 5000

    assert _texts(html) == [("paragraph", "deep text")]


def test_meta_charset_is_honoured_when_bytes_are_not_utf8() -> None:
    """A page declaring a charset whose bytes are not UTF-8 is decoded with that charset."""
    html = '<html><head><meta charset="koi8-r"></head><body><p>Привет</p></body></html>'.encode("koi8-r")

    assert _texts(html) == [("paragraph", "Привет")]


def test_latin1_meta_means_windows_1252() -> None:
    """As browsers do, an iso-8859-1 declaration decodes as windows-1252 (curly quotes survive)."""
    html = '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1"><p>“Olé”</p>'.encode("cp1252")

    assert _texts(html) == [("paragraph", "“Olé”")]


def test_utf8_bytes_win_over_a_wrong_meta_charset() -> None:
    """Valid UTF-8 is decoded as UTF-8 even if the page claims another charset."""
    html = '<meta charset="iso-8859-1"><p>naïve</p>'.encode()

    assert _texts(html) == [("paragraph", "naïve")]


def test_no_word_of_the_visible_text_is_lost() -> None:
    """Every word a browser would show in the fixture's body appears in the parsed elements."""
    data = (FIXTURES / "handbook.html").read_bytes()
    oracle = _VisibleWords()
    oracle.feed(data.decode("utf-8"))

    elements = parse_document(data, path="handbook.html")
    found = set(re.findall(r"[A-Za-z0-9]+", " ".join(e.text for e in elements)))

    assert oracle.words - found == set()
    assert not {"secret", "tracking", "dropped", "Ignored", "serif"} & found


def test_fixture_structure_is_recognised() -> None:
    """The handbook fixture yields the expected heading paths, rows and code."""
    elements = parse_document((FIXTURES / "handbook.html").read_bytes(), path="handbook.html")
    by_text = {e.text: e for e in elements}

    assert by_text["Batteries | pilot"].kind == "table_row"
    assert by_text["Batteries | pilot"].location.heading_path == (
        "Field Handbook",
        "Equipment",
        "Checklist table",
    )
    assert by_text["Nested section paragraph"].location.heading_path == ("Field Handbook", "Travel")
    assert by_text["cairn ingest handbook/\n    --verbose"].kind == "code"
    assert by_text["Book rail for journeys under four hours.\nHotels need approval."].kind == "paragraph"
