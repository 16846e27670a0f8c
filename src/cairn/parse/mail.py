"""E-mail: single messages (.eml, RFC 5322) and mailboxes (.mbox), with the standard library.

Each message is one unit: all its elements share ``heading_path = (subject,)`` (``"(no
subject)"`` without one) and the metadata ``from``, ``to``, ``cc``, ``date``, ``subject`` and
``message_id`` (those present, RFC 2047 words decoded), so chunks never mix two messages.

A message yields, in MIME order: a ``header`` element (``From:``/``To:``/``Cc:``/``Date:``/
``Subject:`` lines, so headers are searchable), its body text, and the elements of its
attachments. Of the alternatives of a ``multipart/alternative`` the plain text is read, else the
HTML (through `parse_html`); transfer encodings and charsets are decoded. Every part with a file
name, every non-text part and every attached message (``message/rfc822``) is an attachment: it is
admitted against the file's limits and parsed as a document of its own by
`ParseContext.parse_member`, which records members it cannot parse. An attachment whose base64
cannot be decoded is recorded as a problem; a limit exceeded stops the whole file.

The module is named ``mail`` so that nothing in the package can shadow the stdlib ``email``.
"""

from __future__ import annotations

import codecs
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email import errors as email_errors
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser

from cairn.errors import LimitExceeded, ParseError
from cairn.models import Element, FailedFile, Location

from .context import ParseContext
from .html import parse_html
from .text import clean_text, decode_bytes, make_element, normalize_newlines

__all__ = ["parse_eml", "parse_mbox"]

# (metadata key, header name) in the order the header element shows them.
_HEADERS = (
    ("from", "From"),
    ("to", "To"),
    ("cc", "Cc"),
    ("date", "Date"),
    ("subject", "Subject"),
    ("message_id", "Message-ID"),
)
_SHOWN = ("from", "to", "cc", "date", "subject")
# A message has at least one of these; a file without any is not an e-mail.
_MAIL_HEADERS = frozenset(
    {"from", "to", "cc", "subject", "date", "message-id", "received", "return-path", "sender", "delivered-to"}
    | {"mime-version", "content-type", "reply-to", "in-reply-to", "references"}
)
# The stdlib's header parser is known to raise assorted errors on malformed headers (bpo-44637,
# gh-102988...); a header that fails is read a simpler way instead of failing the message.
_HEADER_ERRORS = (
    email_errors.MessageError,
    LookupError,
    ValueError,
    IndexError,
    TypeError,
    AttributeError,
    RecursionError,  # comments nested "(((...", parsed by recursion
)
# The structured header parser is superlinear (a To: of 8,000 addresses takes seconds); longer
# headers only have their encoded words decoded.
_MAX_STRUCTURED_HEADER = 4096
_NO_SUBJECT = "(no subject)"
_TOO_DEEP = "the message nests MIME parts or header comments too deeply to read; save its parts separately"
_MAX_FIELD = 1000
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")
# An mbox "From " line: a separator when it opens the file or follows a blank line, or when it
# has the full postmark form ("From sender Thu Jan  1 00:00:00 2024") even without one.
_POSTMARK = re.compile(
    rb"From \S+ +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
)
_FROM_LINE = re.compile(rb"^From ", re.MULTILINE)
_ESCAPED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)


@dataclass
class _Unit:
    """One message's shared location and metadata, and the elements found so far."""

    heading_path: tuple[str, ...]
    metadata: dict[str, str]
    elements: list[Element] = field(default_factory=list)

    def add(self, text: str, kind: str) -> None:
        element = make_element(text, location=Location(heading_path=self.heading_path), kind=kind)
        if element is not None:
            self.elements.append(element.model_copy(update={"metadata": self.metadata}))

    def adopt(self, element: Element) -> None:
        """Take an element of an attachment or HTML body into this message's unit."""
        location = element.location.model_copy(
            update={"heading_path": (*self.heading_path, *element.location.heading_path)}
        )
        self.elements.append(
            element.model_copy(update={"location": location, "metadata": {**self.metadata, **element.metadata}})
        )


def _unsurrogate(text: str) -> str:
    """Undo the surrogate escapes the parser uses for undecodable header bytes."""
    try:
        return decode_bytes(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _decoded(name: str, raw: str) -> str:
    """A raw header value with its RFC 2047 words decoded, by the structured parser if it can."""
    if len(raw) <= _MAX_STRUCTURED_HEADER:
        try:
            return str(policy.default.header_fetch_parse(name, raw))
        except _HEADER_ERRORS:
            pass  # malformed for the structured parser: decode its encoded words only
    try:
        return str(make_header(decode_header(raw)))
    except _HEADER_ERRORS:
        return raw  # even the encoded words are broken: the value as written


def _header(message: Message, name: str) -> str | None:
    """A header's decoded value on one line, or None if absent or empty."""
    raw = next((value for key, value in message.raw_items() if key.lower() == name.lower()), None)
    if not isinstance(raw, str):
        return None
    value = " ".join(clean_text(_unsurrogate(_decoded(name, raw))).split())
    return value or None


def _safe(read: Callable[[], str | None]) -> str | None:
    try:
        return read()
    except _HEADER_ERRORS:
        return None


def _read_message(data: bytes) -> Message:
    """Parse one message, refusing data with no e-mail headers at all."""
    try:
        message = BytesParser(policy=policy.default).parsebytes(data)
    except RecursionError as exc:
        raise ParseError(_TOO_DEEP) from exc
    if not _MAIL_HEADERS & {key.lower() for key, _ in message.raw_items()}:
        raise ParseError(
            "the file has no e-mail headers (From:, To:, Subject:, Date: ...), so it is not an e-mail "
            "message; check the file, or give it the extension of its real format"
        )
    return message


def _part_text(part: Message) -> str:
    """A text part's content: transfer encoding undone, then its declared charset, else a guess."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = _safe(part.get_content_charset)
    if charset:
        try:
            codecs.lookup(charset)
            return normalize_newlines(payload.decode(charset))
        except (LookupError, UnicodeDecodeError, ValueError):
            pass  # a wrong or unknown declared charset: guess, as for undeclared text
    return normalize_newlines(decode_bytes(payload))


def _preferred_alternative(parts: list[Message]) -> Message | None:
    """Of the alternatives of a multipart/alternative, plain text first, then HTML, then any."""
    for wanted in ("text/plain", "text/html"):
        for part in parts:
            if part.get_content_type() == wanted and part.get_content_disposition() != "attachment":
                return part
    nested = [part for part in parts if part.is_multipart()]
    return nested[0] if nested else (parts[-1] if parts else None)


def _attachment_name(part: Message, index: int) -> str:
    """A safe member name: the part's file name without directories, or one made up from its type."""
    filename = _safe(part.get_filename) or ""
    name = _UNSAFE_NAME.sub("", re.split(r"[\\/]", filename)[-1]).strip()
    if name in ("", ".", ".."):
        name = f"attachment-{index}"
    if "." not in name.lstrip("."):
        name += mimetypes.guess_extension(part.get_content_type()) or ""
    return name


def _damaged_base64(part: Message) -> bool:
    return any(isinstance(defect, email_errors.InvalidBase64LengthDefect) for defect in part.defects)


def _attachment(part: Message, index: int, unit: _Unit, context: ParseContext) -> None:
    name = _attachment_name(part, index)
    if part.get_content_maintype() == "message" and part.is_multipart():  # message/rfc822
        inner = part.get_payload(0)
        if not isinstance(inner, Message):
            return
        try:
            payload = inner.as_bytes(policy=policy.compat32)  # compat32: headers exactly as received
        except (*_HEADER_ERRORS, UnicodeError) as exc:
            context.problems.append(FailedFile(path=context.display(name), error=f"could not re-read it ({exc})"))
            return
    else:
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        if _damaged_base64(part):
            context.problems.append(
                FailedFile(
                    path=context.display(name),
                    error="its base64 encoding is damaged and cannot be decoded; "
                    "save the attachment again from the mail client",
                )
            )
            return
    if not payload.strip():
        return  # an empty attachment has nothing to index
    context.admit(name, len(payload))
    for element in context.parse_member(payload, name):
        unit.adopt(element)


def _body(part: Message, unit: _Unit) -> None:
    text = _part_text(part)
    if part.get_content_type() == "text/html":
        for element in parse_html(text.encode("utf-8")):
            unit.adopt(element)
        return
    for paragraph in _PARAGRAPH_BREAK.split(text):
        unit.add(paragraph, "paragraph")


def _delivery_status(part: Message, unit: _Unit) -> None:
    """A bounce report's status blocks (message/delivery-status) as text: they say what failed."""
    for block in part.get_payload():
        if isinstance(block, Message):
            unit.add("\n".join(f"{key}: {_unsurrogate(str(value))}" for key, value in block.raw_items()), "paragraph")


def _unit_of(message: Message) -> _Unit:
    headers = {key: value for key, name in _HEADERS if (value := _header(message, name)) is not None}
    # Metadata rides along with every chunk: a To: line of a thousand recipients must not, whole.
    metadata = {
        key: value if len(value) <= _MAX_FIELD else value[: _MAX_FIELD - 1] + "…" for key, value in headers.items()
    }
    unit = _Unit(heading_path=(metadata.get("subject", _NO_SUBJECT),), metadata=metadata)
    unit.add(
        "\n".join(f"{name}: {headers[key]}" for key, name in _HEADERS if key in _SHOWN and key in headers), "header"
    )
    return unit


def _message_elements(message: Message, context: ParseContext) -> list[Element]:
    """Walk the MIME tree in order (iteratively: depth is bounded by the parser, not the stack)."""
    unit = _unit_of(message)
    stack: list[Message] = [message]
    attachments = 0
    while stack:
        part = stack.pop()
        content_type = part.get_content_type()
        if content_type == "message/delivery-status":
            _delivery_status(part, unit)
        elif part.get_content_maintype() == "message" and part.is_multipart():  # an attached message
            attachments += 1
            _attachment(part, attachments, unit, context)
        elif part.is_multipart():
            children = [child for child in part.get_payload() if isinstance(child, Message)]
            if content_type == "multipart/alternative":
                preferred = _preferred_alternative(children)
                children = [preferred] if preferred is not None else []
            stack.extend(reversed(children))
        elif (
            part.get_content_maintype() == "text"
            and _safe(part.get_filename) is None
            and part.get_content_disposition() != "attachment"
        ):
            _body(part, unit)
        else:
            attachments += 1
            _attachment(part, attachments, unit, context)
    return unit.elements


def parse_eml(data: bytes, context: ParseContext) -> list[Element]:
    """Parse one e-mail message (RFC 5322 / MIME) and, through ``context``, its attachments.

    Raises:
        ParseError: the data has no e-mail headers, or nests MIME parts too deeply.
        LimitExceeded: the attachments break the file's limits (count, size, nesting).
    """
    message = _read_message(data)
    try:
        return _message_elements(message, context)
    except RecursionError as exc:  # a MIME header built of nested comments, say
        raise ParseError(_TOO_DEEP) from exc


def _mbox_messages(data: bytes) -> list[bytes]:
    """Split an mbox at its "From " separator lines; undo the ">From " quoting of body lines."""
    starts = []
    for match in _FROM_LINE.finditer(data):
        position = match.start()
        previous_line = data[data.rfind(b"\n", 0, max(position - 1, 0)) + 1 : position]
        if position == 0 or not previous_line.strip() or _POSTMARK.match(data, position):
            starts.append(position)
    messages = []
    for start, end in zip(starts, [*starts[1:], len(data)], strict=True):
        chunk = data[start:end]
        newline = chunk.find(b"\n")
        body = chunk[newline + 1 :] if newline >= 0 else b""
        messages.append(_ESCAPED_FROM.sub(rb"\1", body))
    return messages


def parse_mbox(data: bytes, context: ParseContext) -> list[Element]:
    """Parse an mbox mailbox: every message is a unit of its own, in mailbox order.

    A message that cannot be read is recorded in ``context.problems`` (as ``message N``) and
    the others are still indexed.

    Raises:
        ParseError: the file does not start with a "From " line, or no message can be read.
        LimitExceeded: the attachments break the file's limits.
    """
    start = len(data) - len(data.lstrip())
    if data[start:].startswith(b"\xef\xbb\xbf"):
        start += 3
    if not data[start:].startswith(b"From "):
        raise ParseError(
            "the file does not start with a 'From ' separator line, so it is not an mbox mailbox; "
            "if it holds a single message, name it .eml"
        )
    messages = _mbox_messages(data[start:])
    elements: list[Element] = []
    failures: list[str] = []
    for number, raw in enumerate(messages, start=1):
        try:
            elements.extend(parse_eml(raw, context))
        except LimitExceeded:
            raise
        except ParseError as exc:  # one bad message costs only itself
            failures.append(str(exc))
            context.problems.append(FailedFile(path=context.display(f"message {number}"), error=str(exc)))
    if len(failures) == len(messages):
        raise ParseError(f"none of the {len(messages)} messages could be read ({failures[0]}); check the mailbox")
    return elements
