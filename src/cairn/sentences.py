"""Sentences as a reader sees them: the units of a passage that an answer may quote whole.

Text from files is hard-wrapped: a sentence runs over several lines and a line holds the end of
one sentence and the start of the next. `text_units` first finds the passage's blocks (runs of
lines between blank lines, and fenced code), then, inside a block, the lines that stand on their
own — headings, list items, table rows, code, question and answer labels ("Q:", "A:", "1.2.") —
and joins the remaining wrapped lines of a paragraph into one run of prose. Each prose run is cut
into sentences by sentencex, a rule-based segmenter that knows abbreviations, decimals and
initials ("e.g.", "3.19.0", "A. U. Thor"), so a sentence is never cut in the middle.

Every unit keeps the character span and the lines of the original text it came from, so a quote
can be traced back to the lines of the passage (and a chunk's location to the lines of its file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import sentencex

__all__ = ["TextUnit", "UnitKind", "is_question", "prose_sentences", "text_units"]

UnitKind = Literal["sentence", "question", "heading", "list_item", "code", "table_row"]

_LANGUAGE = "en"
_FENCE = re.compile(r"^\s*```")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•◦▪]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s+\S")
# Labels that open a question or an answer: "Q:", "Question 3:", "A:", numbered "4.2." questions.
_QUESTION_LABEL = re.compile(
    r"^\s*(?:(?i:Q\d*\s*[:.)]|Question(?:\s+\d+)?\s*:)|\d{1,3}(?:\.\d{1,3})+\.?\s+(?=[\"'A-Z]))"
)
_ANSWER_LABEL = re.compile(r"^\s*(?:A\d*\s*[:.)]|Answer\s*:)\s*", re.IGNORECASE)
_MARKDOWN_HEADING = re.compile(r"^\s*#{1,6}\s+\S")
_RULE = re.compile(r"^\s*[-=~_*#+.]{3,}\s*$")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$|^[^|]*\S\s*\|\s*\S[^|]*\|")
_TERMINAL = re.compile(r"[.!?:;,][\"')\]]*$")
_WORD = re.compile(r"\w+")
_INDENTED_MORE = 4
_CODE_LINE = re.compile(r"(?:[;{}\\]|\w\([^()]*\))$|^[{}]")
_SENTENCE_LIKE = re.compile(r"[A-Za-z]{2,}\.\s+[A-Z]|\s[a-z]+\s[a-z]+\s[a-z]+\s[a-z]+\s[a-z]+;$")
_TERM_LINES = 3  # a term or question above indented text is at most this many lines
_WRAPPED = 0.8  # a line this close to its block's widest line was wrapped, not ended


@dataclass(frozen=True)
class TextUnit:
    """One quotable unit: its reader's text (wrapped lines joined), kind, block and original span."""

    text: str
    kind: UnitKind
    block: int
    start: int  # character offsets in the original text
    end: int
    line_start: int  # 0-based, inclusive lines of the original text
    line_end: int


@dataclass
class _Line:
    text: str
    start: int  # offset of the line's first character in the original text
    number: int

    @property
    def indent(self) -> int:
        return len(self.text) - len(self.text.lstrip())

    @property
    def stripped(self) -> str:
        return self.text.strip()


def is_question(text: str) -> bool:
    """Whether *text* asks something: it ends with a question mark or opens with a question label."""
    bare = text.rstrip().rstrip("\"')]*_")
    return bare.endswith("?") or bool(_QUESTION_LABEL.match(text) and not _ANSWER_LABEL.match(text))


def _lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    offset = 0
    for number, line in enumerate(text.split("\n")):
        lines.append(_Line(line, offset, number))
        offset += len(line) + 1
    return lines


def _blocks(lines: list[_Line]) -> list[tuple[list[_Line], bool]]:
    """Runs of non-blank lines, and fenced code blocks (flagged True) as blocks of their own."""
    blocks: list[tuple[list[_Line], bool]] = []
    current: list[_Line] = []
    fenced: list[_Line] | None = None
    for line in lines:
        if fenced is not None:
            fenced.append(line)
            if _FENCE.match(line.text):
                blocks.append((fenced, True))
                fenced = None
            continue
        if _FENCE.match(line.text):
            if current:
                blocks.append((current, False))
            current, fenced = [], [line]
        elif line.stripped:
            current.append(line)
        elif current:
            blocks.append((current, False))
            current = []
    if fenced is not None:
        blocks.append((fenced, True))
    if current:
        blocks.append((current, False))
    return blocks


def _looks_like_code(block: list[_Line]) -> bool:
    """Lines of C-like code whose indentation was lost (a passage's first lines are stripped): every line
    ends like a statement or a brace, at least one with ';' or a brace, and none like a sentence."""
    ends = [line.stripped[-1] for line in block]
    code_like = all(_CODE_LINE.search(line.stripped) for line in block)
    return (
        code_like
        and any(end in ";{}" for end in ends)
        and not any(_SENTENCE_LIKE.search(line.stripped) for line in block)
    )


def _is_heading(line: _Line, alone: bool) -> bool:
    words = _WORD.findall(line.stripped)
    if _MARKDOWN_HEADING.match(line.text):
        return True
    if not words or _TERMINAL.search(line.stripped) or is_question(line.stripped):
        return False
    letters = [c for c in line.stripped if c.isalpha()]
    shouting = len(letters) >= 2 and all(c.isupper() for c in letters) and len(words) <= 10
    return shouting or (alone and len(words) <= 12)


def _runs(block: list[_Line]) -> list[tuple[str, list[_Line]]]:
    """The block's lines grouped into runs, each with its kind (prose runs are segmented later)."""
    runs: list[tuple[str, list[_Line]]] = []
    alone = sum(1 for line in block if not _RULE.match(line.text)) == 1
    width = max(len(line.text.rstrip()) for line in block)
    code_indent: int | None = None
    for index, line in enumerate(block):
        previous = block[index - 1] if index else None
        if _RULE.match(line.text):
            continue  # a setext underline or a separator: no words to quote
        if code_indent is not None and line.indent >= code_indent:
            runs[-1][1].append(line)
            continue
        code_indent = None
        deeper = previous is not None and line.indent >= previous.indent + _INDENTED_MORE
        if (
            deeper
            and runs
            and previous is not None
            and (previous.stripped.endswith(":") or _CODE_LINE.search(line.stripped))
        ):
            code_indent = line.indent
            runs.append(("code", [line]))
        elif _TABLE_ROW.match(line.text):
            runs.append(("table_row", [line]))
        elif _is_heading(line, alone):
            runs.append(("heading", [line]))
        elif _LIST_ITEM.match(line.text):
            runs.append(("list_item", [line]))
        elif _QUESTION_LABEL.match(line.text) or _ANSWER_LABEL.match(line.text):
            runs.append(("labelled", [line]))
        elif runs and _continues(runs[-1], line, width):
            runs[-1][1].append(line)
        else:
            runs.append(("prose", [line]))
    # A short run with deeper-indented text under it is a term (a man page's tagged paragraph,
    # a question above its answer): context for what follows, not a statement of its own.
    for index, (kind, lines) in enumerate(runs[:-1]):
        below = runs[index + 1][1][0]
        short = len(lines[-1].text.rstrip()) < _WRAPPED * width  # a full-width line is wrapped prose
        if kind == "prose" and len(lines) <= _TERM_LINES and short and below.indent >= lines[-1].indent + 2:
            runs[index] = ("term", lines)
    return runs


def _continues(run: tuple[str, list[_Line]], line: _Line, width: int) -> bool:
    """Whether *line* is a wrapped continuation of *run* (in a block whose longest line is *width*)."""
    kind, lines = run
    first, last = lines[0], lines[-1]
    if kind == "labelled":
        return line.indent >= first.indent
    if kind == "list_item":
        return line.indent > first.indent or not _TERMINAL.search(last.stripped)
    if kind == "prose":
        # A line that runs to the wrap width without closing punctuation goes on on the next line,
        # whatever its indentation; otherwise a change of indentation starts a new paragraph.
        wrapped = not _TERMINAL.search(last.stripped) and len(last.text.rstrip()) >= _WRAPPED * width
        return wrapped or abs(line.indent - last.indent) < 2
    return False


def _joined(lines: list[_Line]) -> tuple[str, list[int]]:
    """The lines' words joined by single spaces, and each character's offset in the original."""
    chars: list[str] = []
    origin: list[int] = []
    for line in lines:
        for word in re.finditer(r"\S+", line.text):
            if chars:
                chars.append(" ")
                origin.append(line.start + word.start() - 1)
            chars.extend(word.group())
            origin.extend(range(line.start + word.start(), line.start + word.end()))
    return "".join(chars), origin


def prose_sentences(text: str) -> list[str]:
    """The sentences of one run of prose (no line structure), each whole."""
    return [s.strip() for s in sentencex.segment(_LANGUAGE, text) if s.strip()]


def _segments(joined: str) -> list[tuple[int, str]]:
    """The sentences of a prose run with their offsets in it."""
    found: list[tuple[int, str]] = []
    offset = 0
    for piece in sentencex.segment(_LANGUAGE, joined):
        begin, offset = offset, offset + len(piece)
        if piece.strip():
            found.append((begin + len(piece) - len(piece.lstrip()), piece.strip()))
    return found


def _line_of(lines: list[_Line], offset: int) -> int:
    low, high = 0, len(lines) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if lines[middle].start <= offset:
            low = middle
        else:
            high = middle - 1
    return lines[low].number


def text_units(text: str) -> list[TextUnit]:
    """The quotable units of *text* in order (see the module docstring)."""
    lines = _lines(text)
    units: list[TextUnit] = []

    def add(unit_text: str, kind: UnitKind, block: int, start: int, end: int) -> None:
        units.append(TextUnit(unit_text, kind, block, start, end, _line_of(lines, start), _line_of(lines, end - 1)))

    text_indent: int | None = None  # indentation of the last line of the previous block of text
    for number, (block, fenced) in enumerate(_blocks(lines)):
        # A block indented deeper than the text before it is an example: code or a quoted session.
        indented = text_indent is not None and block[0].indent >= text_indent + _INDENTED_MORE
        if not (fenced or indented or all(_RULE.match(line.text) for line in block)):
            text_indent = block[-1].indent
        if fenced or indented or _looks_like_code(block):
            body = "\n".join(line.text for line in block).strip("\n")
            add(body, "code", number, block[0].start, block[-1].start + len(block[-1].text))
            continue
        question_open = False
        for kind, run in _runs(block):
            start, end = run[0].start + run[0].indent, run[-1].start + len(run[-1].text.rstrip())
            if kind == "code":
                add("\n".join(line.text for line in run), "code", number, start, end)
                continue
            if kind in ("heading", "table_row", "list_item"):
                joined, _ = _joined(run)
                add(joined.lstrip("# ").strip() if kind == "heading" else joined, kind, number, start, end)  # type: ignore[arg-type]
                continue
            joined, origin = _joined(run)
            if kind == "term":
                term: UnitKind = "question" if "?" in joined else "heading"
                for begin, piece in _segments(joined):
                    add(piece, term, number, origin[begin], origin[begin + len(piece) - 1] + 1)
                continue
            # A labelled question ("Q:", "1.2.") runs up to its first sentence ending in ? or :.
            question_open = kind == "labelled" and is_question(joined)
            for begin, sentence in _segments(joined):
                asked = question_open or sentence.rstrip("\"')]*_").endswith("?")
                if question_open and sentence.rstrip("\"')]").endswith(("?", ":")):
                    question_open = False
                add(
                    sentence,
                    "question" if asked else "sentence",
                    number,
                    origin[begin],
                    origin[begin + len(sentence) - 1] + 1,
                )
    return units
