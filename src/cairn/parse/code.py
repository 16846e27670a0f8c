"""Source code parsing with tree-sitter: one element per definition, located by lines.

    parse_code(data, language) -> list[Element]        # language: a key of LANGUAGES

Each top-level definition (function, class, struct, enum, interface, impl, trait, type...) is one
element of kind ``code``, together with the comments, doc comments, attributes and decorators
directly above it (no blank line between). Code between definitions (imports, module statements,
constants) becomes ``code`` elements of its own. A container (class, impl, trait, namespace...)
longer than `CLASS_SPLIT_LINES` is split into a header element (its opening lines, docstring and
fields before the first method) and one element per member, recursively; any element still
longer than `MAX_ELEMENT_LINES` is cut into consecutive parts at the shallowest statement
boundaries available (then blank lines, then every `MAX_ELEMENT_LINES` lines).

Every non-blank line of the file lies in exactly one element, in order: elements are built as a
partition of the file's lines, each starting where a definition (or run of other code) starts and
ending where the next one starts, minus surrounding blank lines. Lines that only close what came
before (``}``, ``});``, ``#endif``) join the element before them. Files that do not parse cleanly still
yield every line: tree-sitter recovers around errors, and a file it cannot parse in
`PARSE_TIMEOUT_S` is cut at blank lines.

Heading paths name the definitions an element is part of, its own included: a method is
``("class Foo", "def bar")``, a top-level function ``("def parse_code",)``, a class header
``("class Foo",)``, and top-level imports ``()``. Including the element's own name gives the best
citations (``class Foo › def bar, lines 40–58`` tells a reader where to look without opening the
file) and keeps each definition its own section, so the chunker never packs two unrelated
functions into one chunk; parts of one long definition share its path and may be packed together.
"""

from __future__ import annotations

import bisect
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import tree_sitter

from cairn.errors import UnsupportedFormat
from cairn.models import Element, Location

from .code_languages import GRAMMARS, LANGUAGES, Grammar, load_language
from .text import clean_text, decode_bytes, make_element, normalize_newlines

__all__ = [
    "CLASS_SPLIT_LINES",
    "LANGUAGES",
    "MAX_ELEMENT_LINES",
    "PARSE_TIMEOUT_S",
    "parse_code",
]

CLASS_SPLIT_LINES = 60
MAX_ELEMENT_LINES = 120
PARSE_TIMEOUT_S = 20.0
# A part cut from a long element is at least this long, unless no boundary allows it.
_MIN_PART_LINES = MAX_ELEMENT_LINES // 4
# Containers nested deeper than this are kept whole (then cut into parts if long).
_MAX_NESTING = 8
# Statement boundaries are looked for this many levels below an element's own nodes.
_BOUNDARY_DEPTH = 6
_BLANK_LINE_DEPTH = _BOUNDARY_DEPTH + 1


def _end_row(node: tree_sitter.Node) -> int:
    """The last row holding text of ``node`` (a node ending at column 0 ends on the row before)."""
    row, column = node.end_point
    return row - 1 if column == 0 and row > node.start_point.row else row


@dataclass
class _Unit:
    """Consecutive rows of one level of the tree: a definition (with its comments) or other code."""

    start: int
    end: int
    nodes: list[tree_sitter.Node]
    definition: tree_sitter.Node | None = None
    title: str | None = None
    attachable: bool = False

    def absorb(self, other: _Unit) -> None:
        self.end = max(self.end, other.end)
        self.nodes.extend(other.nodes)
        # A definition sharing a row with code before it (minified code) does not name the
        # whole run; one sharing a row with a comment (``/* x */ int f() {``) does.
        if self.definition is None and self.attachable:
            self.definition, self.title = other.definition, other.title
        self.attachable = self.attachable and other.attachable


def _merged(units: Sequence[_Unit]) -> _Unit:
    """Consecutive units of other code as one run."""
    run = _Unit(units[0].start, units[0].end, list(units[0].nodes))
    for unit in units[1:]:
        run.end = max(run.end, unit.end)
        run.nodes.extend(unit.nodes)
    return run


@dataclass(frozen=True)
class _Segment:
    start: int
    path: tuple[str, ...]


@dataclass
class _Splitter:
    """Turns one file's syntax tree into segments: the first row and heading path of each element."""

    grammar: Grammar
    lines: Sequence[str]
    indents: Sequence[int] = field(init=False)

    def __post_init__(self) -> None:
        # Byte width of each line's indentation, to tell whether a node is the first thing on its row.
        self.indents = [len(line.encode()) - len(line.lstrip().encode()) for line in self.lines]

    def file(self, root: tree_sitter.Node | None) -> list[_Segment]:
        if root is None:
            return self._fit(0, len(self.lines) - 1, [], ())
        return self._level(self._units(root.children, 0), (), 0)

    def _definition(self, node: tree_sitter.Node, depth: int = 0) -> tuple[tree_sitter.Node, str] | None:
        """The definition ``node`` is or wraps (decorators, ``export``, ``template``), and its title."""
        titler = self.grammar.titles.get(node.type)
        if titler is not None:
            title = titler(node)
            return (node, title) if title else None
        if node.type in self.grammar.wrappers and depth < 3:
            for child in reversed(node.named_children):
                found = self._definition(child, depth + 1)
                if found is not None:
                    return found
        return None

    def _units(self, nodes: Iterable[tree_sitter.Node], depth: int) -> list[_Unit]:
        """One unit per node, preprocessor conditionals flattened, units sharing a row merged."""
        units: list[_Unit] = []
        for node in nodes:
            if node.start_byte == node.end_byte:
                continue  # a MISSING token tree-sitter inserted to recover from an error
            if node.type in self.grammar.transparent and depth < _MAX_NESTING * 2:
                parts = self._units(node.children, depth + 1)
            else:
                found = self._definition(node)
                unit = _Unit(
                    node.start_point.row, _end_row(node), [node], attachable=node.type in self.grammar.attachable
                )
                if found is not None:
                    unit.definition, unit.title = found
                parts = [unit]
            for unit in parts:
                if units and unit.start <= units[-1].end:
                    units[-1].absorb(unit)
                else:
                    units.append(unit)
        return units

    def _group(self, units: list[_Unit]) -> list[_Unit]:
        """Attach comments directly above each definition to it; merge runs of other code."""
        groups: list[_Unit] = []
        pending: list[_Unit] = []  # units of other code since the last definition
        for unit in units:
            if unit.definition is None:
                pending.append(unit)
                continue
            split = len(pending)
            while (
                split
                and pending[split - 1].attachable
                and pending[split - 1].end + 1 >= (pending[split].start if split < len(pending) else unit.start)
            ):
                split -= 1
            if split:
                groups.append(_merged(pending[:split]))
            attached = pending[split:]
            groups.append(
                _Unit(
                    attached[0].start if attached else unit.start,
                    unit.end,
                    [node for comment in attached for node in comment.nodes] + unit.nodes,
                    unit.definition,
                    unit.title,
                )
            )
            pending = []
        if pending:
            groups.append(_merged(pending))
        return groups

    def _level(self, units: list[_Unit], path: tuple[str, ...], nesting: int) -> list[_Segment]:
        segments: list[_Segment] = []
        for group in self._group(units):
            if group.definition is None or group.title is None:
                segments.extend(self._fit(group.start, group.end, group.nodes, path))
                continue
            own_path = (*path, group.title)
            members = self._members(group, nesting) if group.end - group.start + 1 > CLASS_SPLIT_LINES else None
            if members is not None:
                segments.extend(self._level(members, own_path, nesting + 1))
            else:
                segments.extend(self._fit(group.start, group.end, group.nodes, own_path))
        return segments

    def _members(self, group: _Unit, nesting: int) -> list[_Unit] | None:
        """A long container as units: its header (signature, docstring, fields...), then its members.

        ``None`` when ``group`` is no container or has no member definition to split out.
        """
        definition = group.definition
        if definition is None or definition.type not in self.grammar.containers or nesting >= _MAX_NESTING:
            return None
        body = definition.child_by_field_name("body")
        if body is None:
            return None
        comments = [child for child in definition.children if child.type in self.grammar.attachable]
        header_nodes = [child for child in definition.children if child != body and child not in comments]
        header_end = max([group.start, *(_end_row(node) for node in header_nodes)])
        above = [node for node in group.nodes if node.end_byte <= definition.start_byte]
        header = _Unit(group.start, header_end, above + header_nodes)
        inner = sorted(comments + list(body.children), key=lambda node: node.start_byte)
        members = [header]
        for unit in self._units(inner, 0):
            if unit.start <= members[-1].end:
                members[-1].absorb(unit)
            else:
                members.append(unit)
        if not any(member.definition is not None for member in members[1:]):
            return None
        return members

    def _fit(self, start: int, end: int, nodes: Sequence[tree_sitter.Node], path: tuple[str, ...]) -> list[_Segment]:
        """One segment for rows ``start..end``, or consecutive parts of at most `MAX_ELEMENT_LINES`."""
        if end - start + 1 <= MAX_ELEMENT_LINES:
            return [_Segment(start, path)]
        depths = self._boundaries(start, end, nodes)
        rows = sorted(depths)
        cuts = [start]
        current = start
        while end - current + 1 > MAX_ELEMENT_LINES:
            current = self._next_cut(current, rows, depths)
            cuts.append(current)
        return [_Segment(cut, path) for cut in cuts]

    @staticmethod
    def _next_cut(current: int, rows: list[int], depths: dict[int, int]) -> int:
        """The row the next part starts on: the shallowest boundary, then the furthest one."""
        for low, high in (
            (current + _MIN_PART_LINES, current + MAX_ELEMENT_LINES),
            (current + 1, current + _MIN_PART_LINES - 1),
        ):
            window = rows[bisect.bisect_left(rows, low) : bisect.bisect_right(rows, high)]
            if window:
                return min(window, key=lambda row: (depths[row], -row))
        return current + MAX_ELEMENT_LINES

    def _boundaries(self, start: int, end: int, nodes: Sequence[tree_sitter.Node]) -> dict[int, int]:
        """Rows (after ``start``) where a statement begins, each with the depth of its shallowest one.

        Only multi-line nodes are descended into (a one-line node holds no boundary after its
        start), so a long minified line costs nothing.
        """
        depths: dict[int, int] = {}
        for row in range(start + 1, end + 1):
            if self.lines[row].strip() and not self.lines[row - 1].strip():
                depths[row] = _BLANK_LINE_DEPTH
        stack: list[tuple[tree_sitter.Node, int]] = [(node, 0) for node in nodes]
        while stack:
            node, depth = stack.pop()
            row = node.start_point.row
            if start < row <= end and node.start_point.column == self.indents[row] and node.is_named:
                depths[row] = min(depth, depths.get(row, depth))
            if depth < _BOUNDARY_DEPTH and _end_row(node) > row:
                stack.extend((child, depth + 1) for child in node.children)
        return depths


def _parse_tree(grammar_language: tree_sitter.Language, source: bytes) -> tree_sitter.Tree | None:
    """Parse ``source``; ``None`` when tree-sitter gives up or takes longer than `PARSE_TIMEOUT_S`."""
    parser = tree_sitter.Parser(grammar_language)
    deadline = time.monotonic() + PARSE_TIMEOUT_S

    def read(offset: int, _point: tree_sitter.Point) -> bytes:
        return source[offset : offset + 65536]

    try:
        return parser.parse(read, progress_callback=lambda _offset, _errors: time.monotonic() > deadline)
    except ValueError:  # "Parsing failed": cancelled by the deadline
        return None


# Lines that only close what came before: ``}``, ``});``, ``#endif /* FOO_H */``, ``#else``.
_CLOSING = re.compile(r"\s*(?:[^\w\s]*|#\s*(?:endif|else)\b.*)\s*")


def _trivial(line: str) -> bool:
    return _CLOSING.fullmatch(line) is not None


def _elements(lines: Sequence[str], segments: Sequence[_Segment]) -> list[Element]:
    """Cut ``lines`` at the segment starts; trim blank lines; fold punctuation-only parts backwards."""
    spans: list[tuple[int, int, tuple[str, ...]]] = []
    starts = [0] + [segment.start for segment in segments[1:]] if segments else [0]
    paths = [segment.path for segment in segments] if segments else [()]
    for index, (start, path) in enumerate(zip(starts, paths, strict=True)):
        end = starts[index + 1] - 1 if index + 1 < len(starts) else len(lines) - 1
        if end < start:
            continue
        while start <= end and not lines[start].strip():
            start += 1
        while end >= start and not lines[end].strip():
            end -= 1
        if start > end:
            continue
        if spans and all(_trivial(line) for line in lines[start : end + 1]):
            spans[-1] = (spans[-1][0], end, spans[-1][2])
            continue
        spans.append((start, end, path))
    elements: list[Element] = []
    for start, end, path in spans:
        location = Location(heading_path=path, line_start=start + 1, line_end=end + 1)
        element = make_element("\n".join(lines[start : end + 1]), location=location, kind="code")
        if element is not None:
            elements.append(element)
    return elements


def parse_code(data: bytes, language: str) -> list[Element]:
    """Parse source code in ``language`` (a key of `LANGUAGES`) into ``code`` elements.

    Elements follow definition boundaries (see the module docstring) and carry 1-based inclusive
    ``line_start``/``line_end`` and a heading path naming the enclosing definitions. Invalid
    UTF-8 is decoded leniently; syntax errors never fail the parse.

    Raises:
        UnsupportedFormat: ``language`` is not one of `LANGUAGES`.
    """
    grammar = GRAMMARS.get(language)
    if grammar is None:
        raise UnsupportedFormat(
            f"no grammar for source code in {language!r}; supported languages: {', '.join(sorted(LANGUAGES))}"
        )
    text = clean_text(normalize_newlines(decode_bytes(data)))
    lines = text.split("\n")
    tree = _parse_tree(load_language(language), text.encode())
    segments = _Splitter(grammar, lines).file(tree.root_node if tree is not None else None)
    return _elements(lines, segments)
