"""E-mail (.eml) and mailboxes (.mbox): headers, bodies, attachments through the context, units per message."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from cairn.errors import LimitExceeded, ParseError
from cairn.models import Element
from cairn.parse.context import ParseContext, ParseLimits
from cairn.parse.mail import parse_eml, parse_mbox

REAL = Path(__file__).parent.parent / "fixtures" / "real" / "formats"

ENCODED = b"""\
From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@example.org>
To: Ops <ops@example.org>, dev@example.org
Cc: boss@example.org
Subject: =?iso-8859-1?q?R=E9sum=E9_of_the_outage?=
Date: Mon, 1 Jan 2024 10:00:00 +0000
Message-ID: <outage-1@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

The caf=E9 router failed at 09:12.

It was restarted at 09:40.
"""


def _context() -> ParseContext:
    return ParseContext(path="x.eml")


def _mixed(*parts: EmailMessage, subject: str = "Report") -> bytes:
    message = EmailMessage()
    message["From"] = "alice@example.org"
    message["To"] = "bob@example.org"
    message["Subject"] = subject
    message.set_content("See the attachments.")
    message.make_mixed()
    for part in parts:
        message.attach(part)
    return message.as_bytes()


def _attachment(content: bytes, filename: str, maintype: str = "text", subtype: str = "markdown") -> EmailMessage:
    part = EmailMessage()
    part.set_content(content, maintype=maintype, subtype=subtype, filename=filename, cte="base64")
    return part


def test_headers_are_a_searchable_element_and_decoded_metadata() -> None:
    """The first element lists From/To/Cc/Date/Subject; RFC 2047 words are decoded into the metadata."""
    elements = parse_eml(ENCODED, _context())

    assert elements[0].kind == "header"
    assert elements[0].text == (
        "From: Jürgen Müller <jm@example.org>\nTo: Ops <ops@example.org>, dev@example.org\n"
        "Cc: boss@example.org\nDate: Mon, 01 Jan 2024 10:00:00 +0000\nSubject: Résumé of the outage"
    )
    assert elements[0].metadata == {
        "from": "Jürgen Müller <jm@example.org>",
        "to": "Ops <ops@example.org>, dev@example.org",
        "cc": "boss@example.org",
        "date": "Mon, 01 Jan 2024 10:00:00 +0000",
        "subject": "Résumé of the outage",
        "message_id": "<outage-1@example.org>",
    }


def test_body_is_decoded_into_paragraphs_of_the_message_unit() -> None:
    """Quoted-printable latin-1 is decoded; every element shares the subject heading and metadata."""
    elements = parse_eml(ENCODED, _context())

    assert [(e.kind, e.text) for e in elements[1:]] == [
        ("paragraph", "The café router failed at 09:12."),
        ("paragraph", "It was restarted at 09:40."),
    ]
    assert {e.location.heading_path for e in elements} == {("Résumé of the outage",)}
    assert all(e.metadata == elements[0].metadata for e in elements)


def test_missing_subject_gives_a_placeholder_heading() -> None:
    """Without a Subject the unit is headed "(no subject)" and the metadata has no subject."""
    (header, body) = parse_eml(b"From: a@example.org\n\nHello.\n", _context())

    assert body.location.heading_path == ("(no subject)",)
    assert "subject" not in body.metadata
    assert header.text == "From: a@example.org"


def test_plain_alternative_is_preferred_over_html() -> None:
    """Of multipart/alternative, only the text/plain part is read."""
    message = EmailMessage()
    message["From"], message["Subject"] = "a@example.org", "Alt"
    message.set_content("Plain version.")
    message.add_alternative("<p>HTML version.</p>", subtype="html")

    texts = [e.text for e in parse_eml(message.as_bytes(), _context())]

    assert "Plain version." in texts
    assert not any("HTML version" in text for text in texts)


def test_html_only_body_is_read_as_visible_text() -> None:
    """An HTML body goes through the HTML parser: tags and scripts never reach the text."""
    message = EmailMessage()
    message["From"], message["Subject"] = "a@example.org", "Newsletter"
    message.set_content("<html><body><h1>News</h1><p>We <b>shipped</b>.</p><script>x()</script></body></html>", "html")

    elements = parse_eml(message.as_bytes(), _context())

    assert [(e.kind, e.text) for e in elements[1:]] == [("heading", "News"), ("paragraph", "We shipped.")]
    assert elements[2].location.heading_path == ("Newsletter", "News")
    assert elements[2].metadata["subject"] == "Newsletter"


def test_unknown_charset_falls_back_to_a_guess() -> None:
    """A body in an unknown charset is still decoded (UTF-8, then cp1252)."""
    data = b"From: a@example.org\nContent-Type: text/plain; charset=x-unknown-42\n\nna\xc3\xafve\n"

    assert parse_eml(data, _context())[-1].text == "naïve"


def test_attachment_is_parsed_through_the_context_as_a_member() -> None:
    """A text/markdown attachment is admitted, parsed by type, and its elements name the member."""
    data = _mixed(_attachment(b"# Runbook\n\nRestart the router.\n", "runbook.md"))
    context = _context()

    elements = parse_eml(data, context)
    member = [e for e in elements if e.location.member == "runbook.md"]

    assert [(e.kind, e.text) for e in member] == [("heading", "Runbook"), ("paragraph", "Restart the router.")]
    assert member[1].location.heading_path == ("Report", "Runbook")
    assert member[1].metadata["from"] == "alice@example.org"
    assert context.problems == []
    assert context.skipped == []


def test_attached_message_is_parsed_recursively() -> None:
    """A message/rfc822 part is a member of its own, with its own header element."""
    inner = EmailMessage()
    inner["From"], inner["Subject"] = "carol@example.org", "Original"
    inner.set_content("The forwarded words.")
    wrapper = EmailMessage()
    wrapper.set_content(inner)
    data = _mixed(wrapper, subject="Fwd: Original")

    member = [e for e in parse_eml(data, _context()) if e.location.member]

    assert [(e.kind, e.text) for e in member] == [
        ("header", "From: carol@example.org\nSubject: Original"),
        ("paragraph", "The forwarded words."),
    ]
    assert member[0].location.member.endswith(".eml")  # type: ignore[union-attr]
    assert member[0].location.heading_path == ("Fwd: Original", "Original")
    assert member[0].metadata["subject"] == "Original"


def test_undecodable_base64_attachment_is_recorded_and_the_body_kept() -> None:
    """An attachment whose base64 cannot decode is a recorded problem; the rest is indexed."""
    data = (
        b"From: a@example.org\nSubject: Broken\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="B"\n\n'
        b"--B\nContent-Type: text/plain\n\nThe body survives.\n"
        b'--B\nContent-Type: application/pdf\nContent-Disposition: attachment; filename="scan.pdf"\n'
        b"Content-Transfer-Encoding: base64\n\nJVBERi0xL\n--B--\n"  # 9 base64 digits: no decoding
    )
    context = _context()

    elements = parse_eml(data, context)

    assert [e.text for e in elements if e.kind == "paragraph"] == ["The body survives."]
    assert [p.path for p in context.problems] == ["x.eml › scan.pdf"]
    assert "base64" in context.problems[0].error


def test_limits_exceeded_by_attachments_stop_the_whole_file() -> None:
    """LimitExceeded from admitting attachments is not swallowed."""
    data = _mixed(_attachment(b"one", "a.txt", subtype="plain"), _attachment(b"two", "b.txt", subtype="plain"))

    with pytest.raises(LimitExceeded):
        parse_eml(data, ParseContext(path="x.eml", limits=ParseLimits(max_members=1)))


def test_attachment_file_names_cannot_escape_or_nest() -> None:
    """Directory parts and control characters are stripped from attachment names."""
    data = _mixed(_attachment(b"Secret plans.", "../../etc/pass\x01wd.txt", subtype="plain"))

    members = {e.location.member for e in parse_eml(data, _context()) if e.location.member}

    assert members == {"passwd.txt"}


def test_binary_file_is_not_an_email() -> None:
    """Bytes with no e-mail headers (an image, random data) are a ParseError."""
    noise = random.Random(7).randbytes(4096)
    for data in (b"\x89PNG\r\n\x1a\n" + noise, noise, b"just a note: nothing more\n"):
        with pytest.raises(ParseError, match="no e-mail headers"):
            parse_eml(data, _context())


def test_hostile_headers_fall_back_instead_of_failing() -> None:
    """Nested comments (recursion in the stdlib parser) and 20,000 recipients are still read, fast."""
    crowd = b", ".join(b"u%d@example.org" % n for n in range(20_000))
    data = b"From: x" + b"(" * 5_000 + b"@example.org\nTo: " + crowd + b"\nSubject: Hostile\n\nStill here.\n"

    began = time.perf_counter()
    elements = parse_eml(data, _context())

    assert time.perf_counter() - began < 2
    assert elements[-1].text == "Still here."
    assert elements[0].metadata["from"].startswith("x(((")
    assert len(elements[0].metadata["to"]) == 1000  # metadata is capped; the header element is whole
    assert "u19999@example.org" in elements[0].text


MBOX = b"""\
From alice@example.org Mon Jan  1 10:00:00 2024
From: alice@example.org
Subject: First
Message-ID: <1@example.org>

Hello Bob.
>From the start, this line was escaped.
From here on, a body line not after a blank line.

From bob@example.org Mon Jan  1 11:00:00 2024
From: bob@example.org
Subject: Re: First
Message-ID: <2@example.org>

Hello Alice.

From carol@example.org Mon Jan  1 12:00:00 2024
From: carol@example.org
Message-ID: <3@example.org>

No subject here.
"""


def test_mbox_messages_are_units_of_their_own() -> None:
    """Each mbox message has its own heading path and metadata; all three are read, in order."""
    elements = parse_mbox(MBOX, ParseContext(path="x.mbox"))
    headers = [e for e in elements if e.kind == "header"]

    assert [e.location.heading_path for e in headers] == [("First",), ("Re: First",), ("(no subject)",)]
    assert len({tuple(sorted(e.metadata.items())) for e in headers}) == 3


def test_mbox_separators_and_from_quoting() -> None:
    """ ">From " is unquoted; a "From " line inside a paragraph does not start a new message."""
    elements = parse_mbox(MBOX, ParseContext(path="x.mbox"))
    first = [e.text for e in elements if e.metadata.get("message_id") == "<1@example.org>"]

    assert first[1] == (
        "Hello Bob.\nFrom the start, this line was escaped.\nFrom here on, a body line not after a blank line."
    )


def test_unreadable_mbox_message_is_recorded_and_others_kept() -> None:
    """A message without headers costs only itself: it is listed in problems as "message N"."""
    data = MBOX.replace(b"From: bob@example.org\nSubject: Re: First\nMessage-ID: <2@example.org>\n\n", b"")
    context = ParseContext(path="x.mbox")

    elements = parse_mbox(data, context)

    assert {e.metadata.get("message_id") for e in elements} == {"<1@example.org>", "<3@example.org>"}
    assert [p.path for p in context.problems] == ["x.mbox › message 2"]


def test_text_that_is_not_an_mbox_is_rejected() -> None:
    """A file not starting with a "From " line is not an mbox."""
    with pytest.raises(ParseError, match="From "):
        parse_mbox(b"Subject: hi\n\nbody\n", ParseContext(path="x.mbox"))


def _top_level(elements: list[Element]) -> list[Element]:
    return [e for e in elements if e.location.member is None]


def test_real_bounce_eml_reads_report_status_and_returned_message() -> None:
    """CPython's msg_16 bounce: body text, the delivery-status block and the returned message."""
    context = ParseContext(path="python-email-bounce.eml")
    elements = parse_eml((REAL / "python-email-bounce.eml").read_bytes(), context)
    text = "\n".join(e.text for e in elements)

    assert elements[0].metadata["subject"] == "Delivery Notification: Delivery has failed"
    assert "Status: 5.0.0 (recipient reached disk quota)" in text
    returned = [e for e in elements if e.location.member]
    assert returned[0].metadata["subject"] == "[scr] yeah for Ians!!"
    assert "I always love to find more Ian's that are over 3 years old!!" in text
    assert context.problems == []


def test_real_mbox_has_six_messages() -> None:
    """The mailbox built from six CPython test messages yields six top-level message units."""
    context = ParseContext(path="python-email-archive.mbox")
    elements = parse_mbox((REAL / "python-email-archive.mbox").read_bytes(), context)
    headers = [e for e in _top_level(elements) if e.kind == "header"]

    assert len(headers) == 6
    assert len({e.metadata.get("message_id", e.metadata.get("subject")) for e in headers}) == 6
    assert context.problems == []
    assert {p.path.rsplit(" › ", 1)[1] for p in context.skipped} == {"dingusfish.gif", "clock.bmp"}


@pytest.mark.parametrize(
    ("name", "parse"), [("python-email-bounce.eml", parse_eml), ("python-email-archive.mbox", parse_mbox)]
)
def test_fixture_phrase_occurs_in_parsed_text(name: str, parse: Callable[[bytes, ParseContext], list[Element]]) -> None:
    """phrases-messages.json names a phrase that the parsed text of each fixture contains verbatim."""
    phrase = json.loads((REAL / "phrases-messages.json").read_text())[name]
    elements = parse((REAL / name).read_bytes(), ParseContext(path=name))

    assert phrase in " ".join(" ".join(e.text for e in elements).split())
