"""Tickets from issue-tracker exports (Jira, Zendesk, GitHub issues, generic) as searchable units.

One ticket is one unit: its elements share ``heading_path = ("<id>: <title>",)`` and metadata
(``ticket_id``, ``title``, ``status``, ``priority``, ``assignee``, ``reporter``, ``created``,
``labels``: those present, as strings), so chunks never mix two tickets. The first element
(kind ``ticket``) reads ``ID: title``, a ``Status: ...; Priority: ...`` line and the description;
each comment follows as a ``comment`` element, ``Author: body``.

Recognised shapes, by their keys:

* Jira REST: ``{"key", "fields": {"summary", "description", "status": {"name"}, ...,
  "comment": {"comments": [...]}}}``; descriptions and comment bodies may be Atlassian Document
  Format (a JSON tree), whose text is extracted;
* flat records: an id (``key``, ``number``, ``id`` or ``ticket_id``) and a title (``title``,
  ``summary`` or ``subject``), which covers GitHub issues (``number``, ``title``, ``body``,
  ``state``, ``user.login``, ``labels[].name``), Zendesk tickets (``id``, ``subject``,
  ``description``, ``tags``, ``comments[].plain_body``) and generic exports.

Every field is type-checked: a value of an unexpected type is left out, never trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cairn.models import Element, Location

from .html import fragment_text
from .text import clean_text, make_element

__all__ = ["Ticket", "adf_text", "ticket_elements", "ticket_from_record"]

_ID_KEYS = ("key", "number", "id", "ticket_id")
_TITLE_KEYS = ("title", "summary", "subject")
_DESCRIPTION_KEYS = ("description", "body")
_PERSON_NAME_KEYS = ("displayName", "display_name", "name", "login", "username", "emailAddress", "email")
_COMMENT_BODY_KEYS = ("plain_body", "body", "text", "content")
_COMMENT_AUTHOR_KEYS = ("author", "user", "updateAuthor", "author_id", "user_id")
# Field name in cairn's metadata -> keys that hold it in the exports, in order of preference.
_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("status", ("status", "state")),
    ("priority", ("priority",)),
    ("assignee", ("assignee", "assignee_id")),
    ("reporter", ("reporter", "requester", "creator", "user", "submitter", "requester_id", "submitter_id")),
    ("created", ("created", "created_at", "createdAt")),
    ("labels", ("labels", "tags")),
)
_STATUS_LINE = (("status", "Status"), ("priority", "Priority"), ("assignee", "Assignee"), ("labels", "Labels"))
# ADF block nodes end a line of text; inline nodes (text, mention, emoji) run on.
_ADF_INLINE = frozenset({"text", "mention", "emoji", "inlineCard", "date", "status", "hardBreak"})
# Metadata rides along with every chunk: a hostile multi-megabyte title must not.
_MAX_FIELD = 1000


@dataclass(frozen=True)
class Ticket:
    """A ticket reduced to what cairn indexes: its id, title, description, fields and comments."""

    ticket_id: str
    title: str
    description: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    comments: tuple[tuple[str, str], ...] = ()  # (author, body); author may be ""


def _one_line(value: str) -> str:
    return " ".join(clean_text(value).split())


def _scalar(value: object) -> str | None:
    """A string or number as text; None for anything else (booleans and containers included)."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _name(value: object) -> str | None:
    """The display name of a person, status or priority given as a string or as an object."""
    if isinstance(value, Mapping):
        for key in _PERSON_NAME_KEYS:
            name = _scalar(value.get(key))
            if name is not None:
                return name
        return None
    return _scalar(value)


def _labels(value: object) -> str | None:
    if isinstance(value, list):
        names = [name for name in (_name(item) for item in value) if name is not None]
        return ", ".join(names) if names else None
    return _scalar(value)


def _first(record: Mapping[str, object], keys: tuple[str, ...], read: Callable[[object], str | None]) -> str | None:
    """The first of ``keys`` whose value ``read`` makes text of."""
    for key in keys:
        value = read(record.get(key))
        if value is not None:
            return value
    return None


def adf_text(document: Mapping[str, object]) -> str:
    """The text of an Atlassian Document Format tree, blocks on lines of their own.

    The walk is iterative, so a maliciously deep tree cannot exhaust the stack.
    """
    pieces: list[str] = []
    stack: list[object] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, str):  # a marker pushed to end a block
            pieces.append(node)
            continue
        if not isinstance(node, Mapping):
            continue
        kind = node.get("type")
        attrs = node.get("attrs")
        attrs = attrs if isinstance(attrs, Mapping) else {}
        if kind == "text" and isinstance(node.get("text"), str):
            pieces.append(str(node["text"]))
        elif kind == "hardBreak":
            pieces.append("\n")
        elif kind in ("mention", "emoji", "status", "date"):
            pieces.append(_scalar(attrs.get("text")) or _scalar(attrs.get("shortName")) or "")
        elif kind == "inlineCard":
            pieces.append(_scalar(attrs.get("url")) or "")
        content = node.get("content")
        if isinstance(content, list):
            if kind not in _ADF_INLINE:
                stack.append("\n")
            stack.extend(reversed(content))
    return "\n".join(line.strip() for line in "".join(pieces).split("\n") if line.strip())


def _rich_text(value: object) -> str | None:
    """A description or comment body: plain text, or the text of an ADF document."""
    if isinstance(value, Mapping):
        return adf_text(value) or None
    return _scalar(value)


def _comment(value: object) -> tuple[str, str] | None:
    if isinstance(value, str):
        return ("", value) if value.strip() else None
    if not isinstance(value, Mapping):
        return None
    body = _first(value, _COMMENT_BODY_KEYS, _rich_text)
    if body is None and isinstance(value.get("html_body"), str):
        body = fragment_text(str(value["html_body"])) or None
    if body is None:
        return None
    return _first(value, _COMMENT_AUTHOR_KEYS, _name) or "", body


def _comments(value: object) -> tuple[tuple[str, str], ...]:
    if isinstance(value, Mapping):  # Jira: {"comments": [...], "total": n}
        value = value.get("comments")
    if not isinstance(value, list):  # GitHub gives a count here, not the comments
        return ()
    return tuple(comment for comment in map(_comment, value) if comment is not None)


def ticket_from_record(record: object) -> Ticket | None:
    """The `Ticket` a JSON record describes, or None if it has no id and title."""
    if not isinstance(record, Mapping):
        return None
    fields = record.get("fields")
    if isinstance(fields, Mapping) and _scalar(record.get("key")) is not None:  # Jira
        source: Mapping[str, object] = fields
        ticket_id = _scalar(record.get("key"))
        comments = _comments(fields.get("comment", record.get("comments")))
    else:
        source = record
        ticket_id = _first(record, _ID_KEYS, _scalar)
        comments = _comments(record.get("comments"))
    title = _first(source, _TITLE_KEYS, _scalar)
    if ticket_id is None or (title is None and source is record):
        return None
    values: dict[str, str] = {}
    for name, keys in _FIELDS:
        found = _first(source, keys, _labels if name == "labels" else _name)
        if found is not None:
            values[name] = found
    return Ticket(
        ticket_id=_one_line(ticket_id),
        title=_one_line(title or "(no title)"),
        description=_first(source, _DESCRIPTION_KEYS, _rich_text) or "",
        fields=values,
        comments=comments,
    )


def _truncated(value: str) -> str:
    value = _one_line(value)
    return value if len(value) <= _MAX_FIELD else value[: _MAX_FIELD - 1] + "…"


def ticket_elements(ticket: Ticket, location: Location | None = None) -> list[Element]:
    """The ticket's elements: a ``ticket`` element, then one ``comment`` element per comment.

    ``location`` adds position fields (such as the line of a JSONL record) to every element.
    """
    heading = f"{ticket.ticket_id}: {ticket.title}"
    metadata = {"ticket_id": ticket.ticket_id, "title": ticket.title, **ticket.fields}
    metadata = {key: _truncated(value) for key, value in metadata.items() if _one_line(value)}
    where = (location or Location()).model_copy(update={"heading_path": (_truncated(heading),)})
    fields = ticket.fields
    status = "; ".join(f"{label}: {_one_line(fields[key])}" for key, label in _STATUS_LINE if key in fields)
    text = "\n".join(part for part in (heading, status) if part)
    if ticket.description.strip():
        text = f"{text}\n\n{ticket.description}"
    elements: list[Element] = []
    for body, kind in [(text, "ticket"), *((f"{a}: {b}" if a else b, "comment") for a, b in ticket.comments)]:
        element = make_element(body, location=where, kind=kind)
        if element is not None:
            elements.append(element.model_copy(update={"metadata": metadata}))
    return elements
