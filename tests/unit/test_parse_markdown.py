"""Markdown parsing: heading paths, block kinds, line ranges and no lost text."""

from __future__ import annotations

import re
from pathlib import Path

from cairn.models import Element
from cairn.parse import parse_document
from cairn.parse.markdown import parse_markdown

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parse"


def _by_text(elements: list[Element]) -> dict[str, Element]:
    return {e.text: e for e in elements}


def test_heading_path_nests_and_pops() -> None:
    """A level-n heading closes open headings of level n or deeper; shallower ones stay."""
    source = b"# A\n\na1\n\n## B\n\nb1\n\n### C\n\nc1\n\n## D\n\nd1\n\n# E\n\ne1\n\n### F\n\nf1\n"

    paths = {e.text: e.location.heading_path for e in parse_markdown(source) if e.kind == "paragraph"}

    assert paths == {
        "a1": ("A",),
        "b1": ("A", "B"),
        "c1": ("A", "B", "C"),
        "d1": ("A", "D"),
        "e1": ("E",),
        "f1": ("E", "F"),
    }


def test_headings_are_elements_whose_path_ends_with_themselves() -> None:
    """Heading text is kept as a `heading` element located under its own path."""
    elements = parse_markdown(b"# Guide\n\n## Install *now*\n")

    assert [(e.kind, e.text, e.location.heading_path) for e in elements] == [
        ("heading", "Guide", ("Guide",)),
        ("heading", "Install now", ("Guide", "Install now")),
    ]


def test_text_before_any_heading_has_empty_path() -> None:
    """Paragraphs before the first heading sit at the top level."""
    elements = parse_markdown(b"intro\n\n# H\n")

    assert elements[0].text == "intro"
    assert elements[0].location.heading_path == ()


def test_block_kinds_for_lists_quotes_code_and_tables() -> None:
    """List items, block quotes, fenced and indented code and table rows get their own kinds."""
    source = (
        b"- one\n- two\n  - nested\n\n> quoted\n\n```py\nprint('x')\n```\n\n    indented\n\n"
        b"| A | B |\n|---|---|\n| 1 | 2 |\n"
    )

    kinds = [(e.kind, e.text) for e in parse_markdown(source)]

    assert kinds == [
        ("list_item", "one"),
        ("list_item", "two"),
        ("list_item", "nested"),
        ("quote", "quoted"),
        ("code", "print('x')"),
        ("code", "indented"),
        ("table_row", "A | B"),
        ("table_row", "1 | 2"),
    ]


def test_ordered_list_items_keep_their_numbers() -> None:
    """Step numbers of ordered lists are content and prefix the item's text; bullets are not."""
    elements = parse_markdown(b"3. Charge\n4. Fly\n\n   still step four\n\n- bullet\n")

    assert [(e.kind, e.text) for e in elements] == [
        ("list_item", "3. Charge"),
        ("list_item", "4. Fly"),
        ("list_item", "still step four"),
        ("list_item", "bullet"),
    ]


def test_line_ranges_come_from_the_source() -> None:
    """Each element records the 1-based inclusive lines it occupies in the file."""
    source = b"# Title\n\nline three\nline four\n\n```\ncode\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"

    lines = {e.text: (e.location.line_start, e.location.line_end) for e in parse_markdown(source)}

    assert lines == {
        "Title": (1, 1),
        "line three line four": (3, 4),
        "code": (6, 8),
        "a | b": (10, 10),
        "1 | 2": (12, 12),
    }


def test_inline_markup_is_reduced_to_text() -> None:
    """Emphasis, code spans, links and images keep their text; URLs are dropped."""
    [element] = parse_markdown(b"Some **bold** and `code` with [a link](https://example.com/x) and ![alt](i.png).")

    assert element.text == "Some bold and code with a link and alt."
    assert "example.com" not in element.text


def test_front_matter_is_kept_as_metadata_and_lines_stay_aligned() -> None:
    """YAML front matter becomes one `metadata` element; the body's line numbers are unaffected."""
    elements = parse_markdown(b"---\ntitle: Guide\ntags: [a]\n---\n# Guide\n\nbody\n")

    assert [(e.kind, e.text, e.location.line_start) for e in elements] == [
        ("metadata", "title: Guide\ntags: [a]", 1),
        ("heading", "Guide", 5),
        ("paragraph", "body", 7),
    ]


def test_leading_thematic_break_is_not_front_matter() -> None:
    """A document that opens with `---` and prose is parsed as Markdown, not swallowed as metadata."""
    elements = parse_markdown(b"---\n\nJust prose here.\n\n---\n")

    assert [(e.kind, e.text) for e in elements] == [("paragraph", "Just prose here.")]


def test_raw_html_blocks_keep_their_visible_text_only() -> None:
    """Raw HTML inside Markdown contributes its text, without tags or script content."""
    elements = parse_markdown(b"<div>Visible <b>words</b><script>hidden()</script></div>\n")

    assert [(e.kind, e.text) for e in elements] == [("html", "Visible words")]


def test_no_word_of_the_document_is_lost() -> None:
    """Every word of the fixture's visible text (URLs aside) appears in the parsed elements."""
    source = (FIXTURES / "handbook.md").read_text(encoding="utf-8")
    visible = re.sub(r"\]\([^)]*\)", "]", source)  # link and image targets are not text
    visible = re.sub(r"<[^>]+>", " ", visible)  # nor are raw HTML tags
    visible = re.sub(r"^```\w+", "```", visible, flags=re.MULTILINE)  # nor a fence's language
    expected = set(re.findall(r"[A-Za-z0-9]+", visible))

    elements = parse_document(source.encode("utf-8"), path="handbook.md")
    found = set(re.findall(r"[A-Za-z0-9]+", " ".join(e.text for e in elements)))

    assert expected - found == set()
    assert {"Equipment", "Checklist", "planner", "offline", "metres", "overnight", "visitors"} <= found


def test_fixture_structure_is_recognised() -> None:
    """The handbook fixture yields the expected kinds and nested heading paths."""
    elements = parse_document((FIXTURES / "handbook.md").read_bytes(), path="handbook.md")
    by_text = _by_text(elements)

    assert by_text["Batteries | pilot"].kind == "table_row"
    assert by_text["Batteries | pilot"].location.heading_path == (
        "Field Handbook",
        "Equipment",
        "Checklist table",
    )
    assert by_text["offline maps downloaded"].kind == "list_item"
    travel = by_text["Book rail for journeys under four hours.\nHotels need approval."]
    assert travel.location.heading_path == ("Field Handbook", "Travel")
    assert by_text["Emergency contact"].location.heading_path == ("Field Handbook", "Emergency contact")
