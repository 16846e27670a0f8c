"""Structure-aware, token-bounded chunking with overlap.

Elements (paragraphs, list items, rows...) are packed into chunks that never cross a section
boundary (a change of heading path) and never exceed the embedding model's input limit, so no
token of a chunk is silently dropped by the model. An element too large for one chunk is cut into
whole sentences and line units (`cairn.sentences`: wrapped lines are read as one paragraph, and
list items, table rows, headings and code stay whole), each located at its own lines; a sentence
too large is cut at token boundaries. Consecutive chunks of one section
share up to ``overlap_tokens`` tokens of whole sentences, so a fact split across the boundary is
still found whole in one of them.

Chunk ids are a hash of (document id, version, ordinal): the same input always yields the same ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from cairn.embed.base import Tokenizer
from cairn.models import Chunk, Element, Location
from cairn.sentences import text_units

__all__ = ["chunk_elements", "chunk_id", "embedding_input", "with_heading_path"]


_N = TypeVar("_N", int, float)


def embedding_input(chunk: Chunk, *, heading_context: bool) -> str:
    """The text the embedding model reads for *chunk*: with *heading_context*, its heading path
    (``Guide > Install``) as a first paragraph, then the chunk text; otherwise the chunk text alone.

    The one definition every embedding path uses (ingest, the Ray engine through it, reindex,
    benchmarks), so the same chunk always gets the same vector and the same cache key. The stored
    and displayed text of the chunk, and its location, are unchanged.
    """
    return with_heading_path(chunk.location.heading_path, chunk.text) if heading_context else chunk.text


def with_heading_path(heading_path: Sequence[str], text: str) -> str:
    """*text* after its heading path (``Guide > Install``) as a first paragraph; *text* alone without one.

    What the model embeds with `embedding_input`'s heading context, and what the keyword index of a
    collection created with `Settings.keyword_heading_context` analyses."""
    path = [part.strip() for part in heading_path if part.strip()]
    return " > ".join(path) + "\n\n" + text if path else text


def chunk_id(doc_id: str, version: int, ordinal: int) -> str:
    return hashlib.sha256(f"{doc_id}\x1f{version}\x1f{ordinal}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class _Piece:
    text: str
    tokens: int
    element: int
    location: Location
    metadata: dict[str, str]
    kind: str

    @property
    def section(self) -> tuple[object, ...]:
        """Pieces of one section may share a chunk: same member, sheet, slide, headings, metadata."""
        loc = self.location
        return (loc.member, loc.sheet, loc.slide, loc.heading_path, sorted(self.metadata.items()))


def _piece(element: Element, text: str, tokens: int, index: int) -> _Piece:
    return _Piece(text, tokens, index, element.location, element.metadata, element.kind)


def _split_units(element: Element) -> list[tuple[str, Location]]:
    """The element's text cut into whole sentences and line units (`cairn.sentences`), with their lines.

    Each part keeps the original text of its span (wrapped lines and all) and runs to the next
    part, so nothing between units (a rule line) is lost. When the element records the lines it
    came from, each part's location narrows to the lines of that part.
    """
    text = element.text
    location = element.location
    first = location.line_start
    exact = first is not None and location.line_end == first + text.count("\n")
    # Cut only where whitespace separates two units: a cut inside a word would split the word.
    starts = [0]
    for unit in text_units(text)[1:]:
        if unit.start == 0 or not text[unit.start - 1].isspace():
            continue
        line_start = text.rfind("\n", 0, unit.start) + 1
        # A unit that opens its line starts the part at the line's start, so its indentation stays.
        starts.append(line_start if not text[line_start : unit.start].strip() else unit.start)
    starts = sorted(set(starts))
    parts: list[tuple[str, Location]] = []
    for begin, end in zip(starts, [*starts[1:], len(text)], strict=True):
        part = text[begin:end]
        if not part.strip():
            continue
        where = location
        if exact and first is not None:
            lead = begin + len(part) - len(part.lstrip())
            last = begin + len(part.rstrip()) - 1
            where = location.model_copy(
                update={"line_start": first + text.count("\n", 0, lead), "line_end": first + text.count("\n", 0, last)}
            )
        parts.append((part, where))
    return parts or [(text, location)]


def _pieces(elements: Sequence[Element], tokenizer: Tokenizer, budgets: Callable[[Location], int]) -> list[_Piece]:
    """Every element as one piece, or cut into sentence and token pieces that fit its section's budget."""
    counts = tokenizer.count_tokens([e.text for e in elements])
    pieces: list[_Piece] = []
    for index, (element, tokens) in enumerate(zip(elements, counts, strict=True)):
        budget = budgets(element.location)
        if tokens <= budget:
            pieces.append(_piece(element, element.text, tokens, index))
            continue
        parts = _split_units(element)
        for (sentence, where), sentence_tokens in zip(
            parts, tokenizer.count_tokens([p for p, _ in parts]), strict=True
        ):
            located = element.model_copy(update={"location": where})
            if sentence_tokens <= budget:
                pieces.append(_piece(located, sentence, sentence_tokens, index))
                continue
            cut = tokenizer.split_by_tokens(sentence, budget)
            for part, part_tokens in zip(cut, tokenizer.count_tokens(cut), strict=True):
                pieces.append(_piece(located, part, part_tokens, index))
    return pieces


def _range(pairs: Sequence[tuple[_N | None, _N | None]]) -> tuple[_N | None, _N | None]:
    """The smallest start and largest end of (start, end-or-None) pairs whose start is set."""
    known = [(start, start if end is None else end) for start, end in pairs if start is not None]
    if not known:
        return None, None
    first, last = min(s for s, _ in known), max(e for _, e in known)
    return first, last


def _merge_locations(locations: Sequence[Location]) -> Location:
    """The span of several locations of one section: its names, and page, line, row and time ranges."""
    first = locations[0]
    page, page_end = _range([(loc.page, loc.page_end) for loc in locations])
    line_start, line_end = _range([(loc.line_start, loc.line_end) for loc in locations])
    row_start, row_end = _range([(loc.row_start, loc.row_end) for loc in locations])
    time_start, time_end = _range([(loc.time_start, loc.time_end) for loc in locations])
    return first.model_copy(
        update={
            "page": page,
            "page_end": page_end if page_end != page else None,
            "line_start": line_start,
            "line_end": line_end,
            "row_start": row_start,
            "row_end": row_end if row_end != row_start else None,
            "time_start": time_start,
            "time_end": time_end,
        }
    )


# Between elements of these kinds (both sides), a lighter separator than a paragraph break:
# subtitle cues are fragments of running speech, table rows are lines of one table.
_JOINERS = {"cue": " ", "table_row": "\n"}


def _join(pieces: Sequence[_Piece]) -> str:
    out: list[str] = []
    for i, piece in enumerate(pieces):
        text = piece.text.strip()
        if i:
            before = pieces[i - 1]
            if piece.element == before.element:
                # Parts of one element keep the line break (and the indentation) between them.
                wrapped = "\n" in before.text[len(before.text.rstrip()) :]
                out.append("\n" if wrapped else " ")
                text = piece.text.rstrip() if wrapped else text
            else:
                out.append(_JOINERS.get(piece.kind, "\n\n") if piece.kind == before.kind else "\n\n")
        out.append(text)
    return "".join(out)


def chunk_elements(
    elements: Sequence[Element],
    *,
    doc_id: str,
    version: int,
    tokenizer: Tokenizer,
    max_tokens: int,
    overlap_tokens: int,
    heading_context: bool = False,
) -> list[Chunk]:
    """Pack *elements* into chunks of at most ``max_tokens`` model tokens (special tokens included).

    With *heading_context* (`Settings.embed_heading_context`) a chunk also leaves room for its heading
    path, which `embedding_input` puts before it: the model reads the whole chunk, none of it cut off.
    """
    budget = min(max_tokens, tokenizer.max_tokens) - tokenizer.special_tokens
    # Joining pieces adds separators that may tokenize on their own; keep a small margin.
    budget = max(8, budget - 2)
    reserved: dict[tuple[str, ...], int] = {}
    if heading_context:
        paths = sorted({e.location.heading_path for e in elements})
        prefixes = tokenizer.count_tokens([with_heading_path(path, "") for path in paths])
        reserved = dict(zip(paths, prefixes, strict=True))

    def budgets(location: Location) -> int:
        return max(8, budget - reserved.get(location.heading_path, 0))

    pieces = _pieces(elements, tokenizer, budgets)
    groups: list[list[_Piece]] = []
    current: list[_Piece] = []
    used = 0
    for piece in pieces:
        limit = budgets(piece.location)
        same_section = bool(current) and current[-1].section == piece.section
        if current and (not same_section or used + piece.tokens > limit):
            groups.append(current)
            carried: list[_Piece] = []
            if same_section and overlap_tokens > 0:
                carried_tokens = 0
                for previous in reversed(current):
                    if carried_tokens + previous.tokens > overlap_tokens or len(carried) + 1 >= len(current):
                        break
                    carried.insert(0, previous)
                    carried_tokens += previous.tokens
                if carried_tokens + piece.tokens > limit:
                    carried, carried_tokens = [], 0
            current, used = carried, sum(p.tokens for p in carried)
        current.append(piece)
        used += piece.tokens
    if current:
        groups.append(current)

    texts = [_join(group) for group in groups]
    chunks: list[Chunk] = []
    for ordinal, (group, text, tokens) in enumerate(zip(groups, texts, tokenizer.count_tokens(texts), strict=True)):
        chunks.append(
            Chunk(
                chunk_id=chunk_id(doc_id, version, ordinal),
                doc_id=doc_id,
                version=version,
                ordinal=ordinal,
                text=text,
                location=_merge_locations([p.location for p in group]),
                token_count=tokens,
                metadata=group[0].metadata,
            )
        )
    return chunks
