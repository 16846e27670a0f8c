"""HTML parsing with selectolax (lexbor): visible body text as block elements under headings.

Kinds produced: ``heading``, ``paragraph``, ``list_item``, ``quote``, ``code`` (``<pre>``),
``table_row`` (cells joined with `` | ``), ``definition`` (``<dt>``/``<dd>``) and ``caption``
(``<figcaption>``/``<caption>``). ``<head>`` is ignored; script-like elements are dropped with
their content. The walk is iterative, so deeply nested (or maliciously deep) markup cannot
exhaust the Python stack; lexbor itself repairs malformed markup the way browsers do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser, LexborNode

from cairn.models import Element, Location

from .text import clean_text, decode_bytes, make_element, normalize_newlines

__all__ = ["decode_html", "fragment_text", "parse_html"]

# Elements whose content is never visible text.
_DROPPED = ["script", "style", "noscript", "template", "svg", "iframe", "object", "embed", "canvas"]

_HEADING_LEVELS = {f"h{level}": level for level in range(1, 7)}

# Blocks whose paragraphs take a kind of their own; other blocks inherit their parent's kind.
_BLOCK_KINDS = {
    "li": "list_item",
    "blockquote": "quote",
    "dt": "definition",
    "dd": "definition",
    "figcaption": "caption",
    "caption": "caption",
}

# Elements that end the text before them and start a new element (HTML's block-level boxes).
_BLOCKS = frozenset(
    {
        *_BLOCK_KINDS,
        *_HEADING_LEVELS,
        "address", "article", "aside", "body", "center", "details", "dialog", "div", "dl",
        "fieldset", "figure", "footer", "form", "header", "hgroup", "hr", "html", "legend",
        "main", "menu", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody",
        "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# WHATWG: these labels mean windows-1252 in HTML; UTF-16 labels in an ASCII-readable meta lie.
_CP1252_LABELS = frozenset({"iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "ascii", "us-ascii"})
_WHITESPACE = re.compile(r"\s+")
_SPACES_AROUND_BREAK = re.compile(r" *\n *")
_SPACE_RUN = re.compile(r" {2,}")


def decode_html(data: bytes) -> str:
    """Decode HTML bytes: BOM, then UTF-8, then the document's ``<meta charset>``, then cp1252."""
    declared: str | None = None
    match = _META_CHARSET.search(data[:4096])
    if match is not None:
        label = match.group(1).decode("ascii").lower()
        if label in _CP1252_LABELS:
            declared = "cp1252"
        elif not label.startswith(("utf-16", "utf-32")):
            declared = label
    return normalize_newlines(decode_bytes(data, declared=declared))


def _tidy(pieces: list[str]) -> str:
    """Join collapsed inline text; keep ``<br>`` breaks as newlines without stray spaces."""
    return _SPACES_AROUND_BREAK.sub("\n", _SPACE_RUN.sub(" ", "".join(pieces))).strip()


def _flat_text(root: LexborNode) -> str:
    """All visible text under ``root``, with block boundaries as spaces and ``<br>`` as newlines."""
    pieces: list[str] = []
    # Items are nodes still to visit, or literal text to emit once a block's children are done.
    stack: list[LexborNode | str] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            pieces.append(item)
            continue
        tag = item.tag
        if tag == "-text":
            pieces.append(_WHITESPACE.sub(" ", item.text_content or ""))
        elif tag == "br":
            pieces.append("\n")
        elif tag is not None and not tag.startswith("-"):  # skip comments and doctype
            if tag in _BLOCKS:
                pieces.append(" ")
                stack.append(" ")
            stack.extend(reversed(list(item.iter(include_text=True))))
    return _tidy(pieces)


def fragment_text(markup: str) -> str:
    """The visible text of an HTML fragment (used for raw HTML inside Markdown)."""
    tree = LexborHTMLParser(markup)
    tree.strip_tags(_DROPPED, recursive=True)
    root = tree.body or tree.root
    return _flat_text(root) if root is not None else ""


@dataclass
class _Walk:
    """Accumulates inline text for the innermost open block and turns it into elements."""

    kinds: list[str] = field(default_factory=lambda: ["paragraph"])
    headings: list[tuple[int, str]] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    elements: list[Element] = field(default_factory=list)

    def emit(self, text: str, kind: str) -> None:
        location = Location(heading_path=tuple(heading for _, heading in self.headings))
        element = make_element(text, location=location, kind=kind)
        if element is not None:
            self.elements.append(element)

    def flush(self) -> None:
        if self.pieces:
            self.emit(_tidy(self.pieces), self.kinds[-1])
            self.pieces = []

    def heading(self, level: int, node: LexborNode) -> None:
        text = _flat_text(node)
        title = " ".join(clean_text(text).split())  # a path entry is one line, even after <br>
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        if title:
            self.headings.append((level, title))
        self.emit(text, "heading")

    def table_row(self, row: LexborNode) -> None:
        cells = [_flat_text(cell) for cell in row.iter() if cell.tag in ("td", "th")]
        if any(cells):
            self.emit(" | ".join(cells), "table_row")


def _walk(root: LexborNode, walk: _Walk) -> None:
    # A str item on the stack marks the end of a block opened earlier.
    stack: list[LexborNode | str] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            walk.flush()
            walk.kinds.pop()
            continue
        tag = item.tag
        if tag == "-text":
            walk.pieces.append(_WHITESPACE.sub(" ", item.text_content or ""))
            continue
        if tag is None or tag.startswith("-"):
            continue  # comments, doctype
        if tag == "br":
            walk.pieces.append("\n")
            continue
        if tag in _HEADING_LEVELS or tag in ("pre", "tr"):
            walk.flush()
            if tag == "pre":
                # Preformatted text keeps its whitespace: it is usually code.
                walk.emit(item.text(deep=True, separator=""), "code")
            elif tag == "tr":
                walk.table_row(item)
            else:
                walk.heading(_HEADING_LEVELS[tag], item)
            continue
        if tag in _BLOCKS:
            walk.flush()
            walk.kinds.append(_BLOCK_KINDS.get(tag, walk.kinds[-1]))
            stack.append(tag)
        stack.extend(reversed(list(item.iter(include_text=True))))
    walk.flush()


def parse_html(data: bytes) -> list[Element]:
    """Parse HTML bytes into elements in document order, ignoring ``<head>``.

    Headings h1–h6 build the heading path as in Markdown (a heading of level n closes open
    headings of level n or deeper) and are themselves elements of kind ``heading``.
    """
    tree = LexborHTMLParser(decode_html(data))
    tree.strip_tags(_DROPPED, recursive=True)
    walk = _Walk()
    body = tree.body
    if body is not None:
        _walk(body, walk)
    return walk.elements
