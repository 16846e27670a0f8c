"""Markdown parsing with markdown-it-py: block tokens become elements under their heading path.

Kinds produced: ``heading``, ``paragraph``, ``list_item``, ``quote``, ``code``, ``table_row``,
``html`` (text of raw HTML blocks) and ``metadata`` (YAML/TOML front matter, kept verbatim).
Line numbers come from markdown-it's ``token.map`` and refer to the original file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token

from cairn.models import Element, Location

from .html import fragment_text
from .text import clean_text, decode_bytes, make_element, normalize_newlines

__all__ = ["parse_markdown"]

# Jekyll/Hugo-style front matter: a fenced block of `key: value` (YAML) or `key = value` (TOML)
# lines at the very start. Requiring a key on the first line keeps a leading thematic break
# (`---`) followed by prose from being mistaken for metadata.
_FRONT_MATTER = re.compile(
    r"\A(?:---\n[A-Za-z_][\w-]*[ \t]*:.*?\n---|\+\+\+\n[A-Za-z_][\w-]*[ \t]*=.*?\n\+\+\+)[ \t]*(?:\n|\Z)",
    re.DOTALL,
)

# Container token types and the kind their paragraphs take; the innermost container wins.
_CONTAINER_KINDS = {"list_item_open": "list_item", "blockquote_open": "quote"}


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


@dataclass
class _State:
    """The walk's position: open headings (level, text), open containers and the current row."""

    headings: list[tuple[int, str]] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    row_cells: list[str] | None = None
    row_map: list[int] | None = None
    # An ordered list item's number ("3. "), waiting for the item's first paragraph: step
    # numbers are content ("see step 3"), unlike bullet markers.
    item_number: str = ""
    elements: list[Element] = field(default_factory=list)

    def heading_path(self) -> tuple[str, ...]:
        return tuple(text for _, text in self.headings)

    def emit(self, text: str, kind: str, line_map: Sequence[int] | None) -> None:
        self.item_number = ""
        location = Location(heading_path=self.heading_path(), **_lines(line_map))
        element = make_element(text, location=location, kind=kind)
        if element is not None:
            self.elements.append(element)


def _lines(line_map: Sequence[int] | None) -> dict[str, int]:
    """markdown-it maps are 0-based, end-exclusive; `Location` lines are 1-based, inclusive."""
    if not line_map:
        return {}
    start, end = line_map[0], line_map[1]
    return {"line_start": start + 1, "line_end": max(end, start + 1)}


def inline_text(token: Token) -> str:
    """Reduce an inline token to its text: markup dropped, link text and image alt kept."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline", "image"):  # an image's content is its alt text
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
        # Inline HTML tags (<b>, <br>) carry no text of their own; their content arrives as text.
    return "".join(parts)


def _split_front_matter(source: str) -> tuple[str, str]:
    """Return (front matter, body); the body keeps blank lines in its place so lines still match."""
    match = _FRONT_MATTER.match(source)
    if match is None:
        return "", source
    block = match.group(0)
    return block.rstrip("\n"), "\n" * block.count("\n") + source[len(block) :]


def _walk(tokens: Sequence[Token], state: _State) -> None:
    position = 0
    while position < len(tokens):
        token = tokens[position]
        kind = token.type
        if kind == "heading_open":
            level = int(token.tag[1:])
            text = clean_text(inline_text(tokens[position + 1])).strip()
            while state.headings and state.headings[-1][0] >= level:
                state.headings.pop()
            if text:
                state.headings.append((level, text))
            state.emit(text, "heading", token.map)
            position += 3  # heading_open, inline, heading_close
            continue
        if kind in _CONTAINER_KINDS:
            state.containers.append(_CONTAINER_KINDS[kind])
            state.item_number = f"{token.info}{token.markup} " if token.info else ""
        elif kind in ("list_item_close", "blockquote_close"):
            state.containers.pop()
        elif kind == "paragraph_open":
            container = state.containers[-1] if state.containers else "paragraph"
            text = state.item_number + inline_text(tokens[position + 1])
            state.emit(text, container, token.map)
        elif kind in ("fence", "code_block"):
            state.emit(token.content, "code", token.map)
        elif kind == "html_block":
            state.emit(fragment_text(token.content), "html", token.map)
        elif kind == "tr_open":
            state.row_cells, state.row_map = [], token.map
        elif kind == "inline" and state.row_cells is not None:
            state.row_cells.append(inline_text(token).strip())
        elif kind == "tr_close" and state.row_cells is not None:
            if any(state.row_cells):
                state.emit(" | ".join(state.row_cells), "table_row", state.row_map)
            state.row_cells, state.row_map = None, None
        position += 1


def parse_markdown(data: bytes) -> list[Element]:
    """Parse Markdown bytes into elements in document order.

    Every heading is itself an element (kind ``heading``) whose heading path ends with it;
    a heading of level n closes any open heading of level n or deeper.
    """
    source = clean_text(normalize_newlines(decode_bytes(data)))
    front_matter, body = _split_front_matter(source)
    state = _State()
    if front_matter:
        lines = front_matter.split("\n")
        # The fences are syntax, not text; the location still spans them.
        state.emit("\n".join(lines[1:-1]), "metadata", [0, len(lines)])
    _walk(_parser().parse(body), state)
    return state.elements
