"""JSON and JSON Lines documents: ticket exports, Whisper transcripts and generic records.

The shape of each record decides what it becomes:

* a Whisper transcript (``{"segments": [{start, end, text}, ...]}``) or a single segment:
  ``cue`` elements with times (see `cairn.parse.transcripts`);
* a ticket (Jira, Zendesk, GitHub issue or a generic ``id`` + ``title`` record): one unit of a
  ``ticket`` element and its ``comment`` elements (see `cairn.parse.tickets`);
* anything else: one ``record`` element whose text lists the leaf values as
  ``key.path: value`` lines (``list[0].key`` for lists of objects, ``key: a, b`` for lists of
  scalars).

A JSON document's records are the items of a top-level list, or of the list a top-level object
holds under ``issues``, ``tickets``, ``results``, ``data`` or ``items``; any other document is one
record. Generic records of a list carry their 1-based position as ``row_start``. In JSON Lines
each non-blank line is a record and every element carries its line number.

Invalid UTF-8 is decoded leniently; nesting too deep for Python's parser, and every other
malformed input, raises `ParseError` naming the line; in JSON Lines that costs only the line,
which is left out with a warning (`cairn.parse.salvage`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from cairn.errors import ParseError
from cairn.models import Element, Location

from .salvage import warn
from .text import decode_bytes, make_element, normalize_newlines
from .tickets import ticket_elements, ticket_from_record
from .transcripts import is_whisper_segment, is_whisper_transcript, segment_cue, whisper_segments

__all__ = ["parse_json", "parse_jsonl", "record_text"]

_RECORD_LISTS = ("issues", "tickets", "results", "data", "items")
# json.loads turns "\ud800" escapes into lone surrogates, which no encoder downstream accepts.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _scalar_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value.strip() else None
    return str(value)


def record_text(value: object) -> str:
    """A JSON value as ``key.path: value`` lines, one per non-empty leaf, in document order.

    Iterative, so depth is bounded only by what `json.loads` accepted.
    """
    lines: list[str] = []
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, Mapping):
            children = [(f"{path}.{key}" if path else str(key), child) for key, child in item.items()]
            stack.extend(reversed(children))
        elif isinstance(item, list):
            if item and not any(isinstance(child, Mapping | list) for child in item):
                scalars = [text for text in map(_scalar_text, item) if text is not None]
                if scalars:
                    lines.append(f"{path}: {', '.join(scalars)}" if path else ", ".join(scalars))
            else:
                stack.extend(reversed([(f"{path}[{index}]", child) for index, child in enumerate(item)]))
        else:
            text = _scalar_text(item)
            if text is not None:
                lines.append(f"{path}: {text}" if path else text)
    return "\n".join(lines)


def _record_elements(record: object, location: Location, where: str, *, row: int | None = None) -> list[Element]:
    """The elements of one record: cues, a ticket unit, or one generic ``record`` element.

    ``row`` (the record's position in its list) is kept for generic records only: cues have
    times, and a ticket is found by its id.
    """
    if is_whisper_transcript(record) and isinstance(record, Mapping):
        return [_placed(cue, location) for cue in whisper_segments(record)]
    if is_whisper_segment(record) and isinstance(record, Mapping):
        cue = segment_cue(record, where=where)
        return [_placed(cue, location)] if cue is not None else []
    ticket = ticket_from_record(record)
    if ticket is not None:
        return ticket_elements(ticket, location)
    if row is not None:
        location = location.model_copy(update={"row_start": row})
    element = make_element(record_text(record), location=location, kind="record")
    return [element] if element is not None else []


def _placed(element: Element, location: Location) -> Element:
    """``element`` with the line/row fields of ``location`` added to its own (times kept)."""
    fields = location.model_dump(exclude_none=True, exclude={"label", "heading_path"})
    return element.model_copy(update={"location": element.location.model_copy(update=fields)}) if fields else element


def _record_list(document: Mapping[str, object]) -> tuple[str, list[object]] | None:
    for key in _RECORD_LISTS:
        value = document.get(key)
        if isinstance(value, list):
            return key, value
    return None


def _document_elements(document: object) -> list[Element]:
    if isinstance(document, list):
        records: list[object] = document
        envelope: dict[str, object] = {}
    elif isinstance(document, Mapping) and not is_whisper_transcript(document) and ticket_from_record(document) is None:
        found = _record_list(document)
        if found is None:
            return _record_elements(document, Location(), "the document")
        key, records = found
        envelope = {name: value for name, value in document.items() if name != key}
    else:
        return _record_elements(document, Location(), "the document")
    elements: list[Element] = []
    for index, record in enumerate(records):
        elements.extend(_record_elements(record, Location(), f"record {index + 1}", row=index + 1))
    # Around a list of tickets the other keys are paging details (total, startAt); around other
    # records they may be content, so they are kept as a record of their own.
    if envelope and not any(element.kind == "ticket" for element in elements):
        head = make_element(record_text(envelope), location=Location(), kind="record")
        elements[:0] = [head] if head is not None else []
    return elements


def _scrub(text: str) -> str:
    return _LONE_SURROGATE.sub("\ufffd", text)


def _scrubbed(elements: list[Element]) -> list[Element]:
    """Replace lone surrogates (from ``\\ud800`` escapes) in text, metadata and heading paths."""
    clean: list[Element] = []
    for element in elements:
        path = element.location.heading_path
        if _LONE_SURROGATE.search("\n".join((element.text, *element.metadata.values(), *path))):
            element = element.model_copy(
                update={
                    "text": _scrub(element.text),
                    "metadata": {key: _scrub(value) for key, value in element.metadata.items()},
                    "location": element.location.model_copy(update={"heading_path": tuple(map(_scrub, path))}),
                }
            )
        clean.append(element)
    return clean


def _load(text: str, where: str, advice: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        extra = (
            " (it holds more than one JSON value: if it has one value per line, name it .jsonl)"
            if exc.msg == "Extra data"
            else ""
        )
        raise ParseError(f"{where} is not valid JSON: {exc.msg} at {_position(exc)}{extra}; {advice}") from exc
    except RecursionError as exc:
        raise ParseError(f"{where} nests arrays or objects too deeply to read; flatten the data") from exc
    except ValueError as exc:  # an integer too long to convert, and similar
        raise ParseError(f"{where} holds a value Python cannot read ({exc}); {advice}") from exc


def _position(exc: json.JSONDecodeError) -> str:
    return f"line {exc.lineno}, column {exc.colno}" if exc.lineno > 1 else f"column {exc.colno}"


def parse_json(data: bytes) -> list[Element]:
    """Parse a JSON document into cue, ticket/comment or record elements (see the module doc).

    Raises:
        ParseError: the file is not valid JSON (the message gives line and column), nests too
            deeply, or holds a malformed Whisper segment.
    """
    document = _load(decode_bytes(data), "the file", "fix the file")
    return _scrubbed(_document_elements(document))


def parse_jsonl(data: bytes) -> list[Element]:
    """Parse JSON Lines: each non-blank line is one record, classified like a JSON record.

    A line that is not valid JSON, or holds a malformed record (a Whisper segment with bad times),
    is left out with a warning that names it ("line 17 is not valid JSON: ...; the line was left
    out"); the other lines are kept.
    """
    elements: list[Element] = []
    for number, line in enumerate(normalize_newlines(decode_bytes(data)).split("\n"), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        location = Location(line_start=number, line_end=number)
        try:
            record = _load(line, where, "the line was left out")
            items = record if isinstance(record, list) else [record]  # a line may hold a batch of records
            elements.extend(element for item in items for element in _record_elements(item, location, where))
        except ParseError as exc:
            message = str(exc)
            warn(message if "left out" in message else f"{message}; the line was left out")
    return _scrubbed(elements)
