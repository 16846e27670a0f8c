"""JSON and JSONL: tickets as units, Whisper transcripts as cues, other records as key-path lines."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.errors import ParseError
from cairn.models import Element
from cairn.parse.jsondocs import parse_json, parse_jsonl, record_text
from cairn.parse.salvage import collecting

REAL = Path(__file__).parent.parent / "fixtures" / "real" / "formats"


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


def _adf(*paragraphs: str) -> dict[str, object]:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]} for text in paragraphs],
    }


JIRA = {
    "startAt": 0,
    "total": 2,
    "issues": [
        {
            "key": "OPS-7",
            "fields": {
                "summary": "Backups fail on Sundays",
                "description": _adf("The nightly job exits with code 3.", "Only on Sundays."),
                "status": {"name": "In Progress"},
                "priority": {"name": "High"},
                "assignee": {"displayName": "Ada Lovelace"},
                "reporter": {"displayName": "Charles Babbage"},
                "created": "2024-03-01T10:00:00.000+0000",
                "labels": ["backup", "cron"],
                "comment": {
                    "comments": [
                        {
                            "author": {"displayName": "Grace Hopper"},
                            "body": _adf("Log rotation runs at the same time."),
                        },
                        {"author": {"displayName": "Ada Lovelace"}, "body": "Moved rotation to 04:00."},
                    ]
                },
            },
        },
        {"key": "OPS-8", "fields": {"summary": "Disk alert", "description": "Plain text description."}},
    ],
}


def test_jira_export_gives_one_unit_per_issue() -> None:
    """A Jira issue: a ticket element (id, title, status line, ADF description) then its comments."""
    elements = parse_json(_json(JIRA))

    assert [(e.kind, e.text) for e in elements] == [
        (
            "ticket",
            "OPS-7: Backups fail on Sundays\n"
            "Status: In Progress; Priority: High; Assignee: Ada Lovelace; Labels: backup, cron\n\n"
            "The nightly job exits with code 3.\nOnly on Sundays.",
        ),
        ("comment", "Grace Hopper: Log rotation runs at the same time."),
        ("comment", "Ada Lovelace: Moved rotation to 04:00."),
        ("ticket", "OPS-8: Disk alert\n\nPlain text description."),
    ]
    assert elements[0].metadata == {
        "ticket_id": "OPS-7",
        "title": "Backups fail on Sundays",
        "status": "In Progress",
        "priority": "High",
        "assignee": "Ada Lovelace",
        "reporter": "Charles Babbage",
        "created": "2024-03-01T10:00:00.000+0000",
        "labels": "backup, cron",
    }


def test_elements_of_one_ticket_share_heading_and_metadata_and_tickets_differ() -> None:
    """Comments carry their ticket's heading path and metadata, so chunks never mix two tickets."""
    elements = parse_json(_json(JIRA))
    sections = [(e.location.heading_path, tuple(sorted(e.metadata.items()))) for e in elements]

    assert sections[0] == sections[1] == sections[2]
    assert sections[0] != sections[3]
    assert sections[3][0] == ("OPS-8: Disk alert",)


def test_zendesk_export() -> None:
    """Zendesk tickets: subject as title, tags as labels, plain_body comments by author_id."""
    export = {
        "tickets": [
            {
                "id": 35436,
                "subject": "Help, my printer is on fire!",
                "description": "The fire is very colorful.",
                "status": "open",
                "priority": "urgent",
                "tags": ["enterprise", "other_tag"],
                "requester_id": 20978392,
                "comments": [{"author_id": 123, "plain_body": "Please unplug it.", "html_body": "<p>x</p>"}],
            }
        ],
        "count": 1,
    }

    ticket, comment = parse_json(_json(export))

    assert ticket.text.startswith("35436: Help, my printer is on fire!\nStatus: open; Priority: urgent")
    assert ticket.text.endswith("The fire is very colorful.")
    assert ticket.metadata["labels"] == "enterprise, other_tag"
    assert ticket.metadata["reporter"] == "20978392"
    assert (comment.kind, comment.text) == ("comment", "123: Please unplug it.")


def test_github_issues_with_comment_counts_and_comment_lists() -> None:
    """GitHub issues: number and title, body, state, user.login; a comment count adds no elements."""
    issues = [
        {
            "number": 1347,
            "id": 1,
            "title": "Found a bug",
            "body": "I'm having a problem with this.",
            "state": "open",
            "user": {"login": "octocat"},
            "labels": [{"name": "bug"}],
            "assignee": {"login": "hubot"},
            "comments": 3,
        },
        {"number": 1348, "title": "Docs", "body": None, "comments": [{"user": {"login": "mona"}, "body": "+1"}]},
    ]

    elements = parse_json(_json(issues))

    assert [(e.kind, e.text) for e in elements] == [
        ("ticket", "1347: Found a bug\nStatus: open; Assignee: hubot; Labels: bug\n\nI'm having a problem with this."),
        ("ticket", "1348: Docs"),
        ("comment", "mona: +1"),
    ]
    assert elements[0].metadata["reporter"] == "octocat"
    assert elements[0].location.row_start is None


def test_generic_tickets_under_results() -> None:
    """A generic record with an id and a title/summary/subject is a ticket, wherever the list sits."""
    export = {"results": [{"id": "T-1", "summary": "Rename service", "body": "Call it cairn.", "comments": ["ok"]}]}

    assert [(e.kind, e.text) for e in parse_json(_json(export))] == [
        ("ticket", "T-1: Rename service\n\nCall it cairn."),
        ("comment", "ok"),
    ]


def test_generic_json_records_render_key_paths() -> None:
    """Other records become one ``record`` element each: key.path lines, list positions as rows."""
    document = {
        "page": 2,
        "data": [
            {"name": "alpha", "tags": ["x", "y"], "owner": {"team": "infra", "on_call": True}, "empty": None},
            {"name": "beta", "parts": [{"sku": "A1"}, {"sku": "B2"}]},
        ],
    }

    elements = parse_json(_json(document))

    assert [(e.kind, e.text, e.location.row_start) for e in elements] == [
        ("record", "page: 2", None),
        ("record", "name: alpha\ntags: x, y\nowner.team: infra\nowner.on_call: true", 1),
        ("record", "name: beta\nparts[0].sku: A1\nparts[1].sku: B2", 2),
    ]


def test_scalar_and_single_object_documents_are_one_record() -> None:
    """A scalar or a plain object document is one element."""
    assert [e.text for e in parse_json(b'"just a string"')] == ["just a string"]
    assert [e.text for e in parse_json(b'{"a": {"b": [1, 2]}}')] == ["a.b: 1, 2"]
    assert record_text([]) == ""


def test_whisper_json_becomes_cues() -> None:
    """An OpenAI-Whisper-style transcript becomes cue elements with times."""
    transcript = {"text": " Hi. Bye.", "language": "en", "segments": [
        {"id": 0, "seek": 0, "start": 0.0, "end": 1.5, "text": " Hi."},
        {"id": 1, "seek": 0, "start": 1.5, "end": 3.0, "text": " Bye."},
    ]}  # fmt: skip

    elements = parse_json(_json(transcript))

    assert [(e.kind, e.text, e.location.time_start, e.location.time_end) for e in elements] == [
        ("cue", "Hi.", 0.0, 1.5),
        ("cue", "Bye.", 1.5, 3.0),
    ]


def test_whisper_cpp_json_becomes_cues() -> None:
    """whisper.cpp's output (``transcription`` with millisecond ``offsets``) is a transcript too."""
    document = {"transcription": [{"timestamps": {}, "offsets": {"from": 0, "to": 2500}, "text": " Hello."}]}

    assert [(e.text, e.location.time_end) for e in parse_json(_json(document))] == [("Hello.", 2.5)]


def test_jsonl_records_carry_their_line_and_keep_their_shape() -> None:
    """JSONL: blank lines are skipped, a ticket line is a ticket, a segment line a cue, lines numbered."""
    lines = [
        json.dumps({"number": 5, "title": "Crash on start", "body": "Stack trace attached."}),
        "",
        json.dumps({"start": 1.0, "end": 2.0, "text": "spoken words"}),
        json.dumps({"level": "info", "msg": "service started"}),
    ]

    elements = parse_jsonl("\n".join(lines).encode())

    assert [(e.kind, e.text, e.location.line_start) for e in elements] == [
        ("ticket", "5: Crash on start\n\nStack trace attached.", 1),
        ("cue", "spoken words", 3),
        ("record", "level: info\nmsg: service started", 4),
    ]
    assert elements[1].location.time_start == 1.0


def test_jsonl_bad_line_is_left_out_with_a_warning_naming_it() -> None:
    """One invalid line costs only that line: the others are kept and a warning names it."""
    data = b'{"a": 1}\n{"b": 2}\n\n{"c": 3,}\n'

    with collecting() as warnings:
        elements = parse_jsonl(data)

    assert [e.text for e in elements] == ["a: 1", "b: 2"]
    assert len(warnings) == 1
    assert re.fullmatch(r"line 4 is not valid JSON: .*; the line was left out", warnings[0])


def test_broken_json_names_line_and_column() -> None:
    """Invalid JSON is a ParseError with the position, chaining the decoder's error."""
    with pytest.raises(ParseError, match=r"not valid JSON: Expecting ',' delimiter at line 3, column 3") as caught:
        parse_json(b'{\n  "a": 1\n  "b": 2\n}')

    assert isinstance(caught.value.__cause__, json.JSONDecodeError)


def test_several_json_values_suggest_jsonl() -> None:
    """A .json file holding one value per line gets advice to name it .jsonl."""
    with pytest.raises(ParseError, match=r"name it \.jsonl"):
        parse_json(b'{"a": 1}\n{"a": 2}\n')


def test_deeply_nested_json_is_a_parse_error_not_a_crash() -> None:
    """Nesting beyond Python's recursion limit raises ParseError, not RecursionError; in JSON Lines it costs
    only its line, left out with a warning that says why."""
    from cairn.parse.salvage import collecting

    with pytest.raises(ParseError, match="too deeply"):
        parse_json(b"[" * 200_000 + b"]" * 200_000)
    with collecting() as warnings:
        kept = parse_jsonl(b"[" * 200_000 + b"]" * 200_000 + b'\n{"title": "fine", "body": "still here"}\n')
    assert [w for w in warnings if "too deeply" in w and "line 1" in w]
    assert any("still here" in element.text for element in kept)


def test_nesting_python_can_read_is_rendered_iteratively() -> None:
    """A record nested 500 levels deep (below json's limit) renders without recursion."""
    depth = 500
    document = b'{"k":' * depth + b'"deep"' + b"}" * depth

    (element,) = parse_json(document)

    assert element.text == ".".join(["k"] * depth) + ": deep"


def test_invalid_utf8_is_decoded_leniently() -> None:
    """Bytes that are not UTF-8 are read as cp1252 instead of failing."""
    assert parse_json(b'{"name": "caf\xe9"}')[0].text == "name: café"


def test_lone_surrogate_escapes_are_replaced() -> None:
    """A ``\\ud800`` escape (valid JSON, invalid Unicode) becomes U+FFFD in text, metadata and headings."""
    elements = parse_json(b'[{"id": 1, "title": "bad \\ud800 title"}]')

    assert elements[0].text == "1: bad \ufffd title"
    assert elements[0].metadata["title"] == "bad \ufffd title"
    assert elements[0].location.heading_path == ("1: bad \ufffd title",)


def test_hostile_ticket_fields_are_ignored_not_trusted() -> None:
    """Fields of unexpected types (lists as status, objects as titles) are left out, not crashed on."""
    record = {"id": 9, "title": "Odd", "status": [1, 2], "priority": {"nested": {"x": 1}}, "labels": 7, "comments": {}}

    (element,) = parse_json(_json([record]))

    assert element.text == "9: Odd\nLabels: 7"
    assert element.metadata == {"ticket_id": "9", "title": "Odd", "labels": "7"}


_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=30).filter(lambda s: s.strip())
_tickets = st.lists(
    st.fixed_dictionaries(
        {
            "title": _text,
            "description": _text,
            "comments": st.lists(st.fixed_dictionaries({"author": _text, "body": _text}), max_size=4),
        }
    ),
    min_size=1,
    max_size=12,
)


def _normal(text: str) -> str:
    return " ".join(text.split())


@settings(max_examples=60, deadline=None)
@given(_tickets, st.sampled_from(["jira", "github", "zendesk"]), st.booleans())
def test_generated_tickets_keep_every_title_and_comment(
    tickets: list[dict[str, object]], shape: str, as_lines: bool
) -> None:
    """For any ticket list: every title and comment body appears; no two tickets share metadata."""
    records: list[dict[str, object]] = []
    for number, ticket in enumerate(tickets, start=1):
        comments = ticket["comments"]
        if shape == "jira":
            fields = {
                "summary": ticket["title"],
                "description": ticket["description"],
                "comment": {"comments": comments},
            }
            records.append({"key": f"P-{number}", "fields": fields})
        elif shape == "github":
            records.append(
                {"number": number, "title": ticket["title"], "body": ticket["description"], "comments": comments}
            )
        else:
            records.append({"id": number, "subject": ticket["title"], "comments": comments})
    if as_lines:
        elements = parse_jsonl("\n".join(json.dumps(r) for r in records).encode())
    else:
        elements = parse_json(_json({"issues": records} if shape == "jira" else records))

    text = _normal("\n".join(e.text for e in elements))
    heads = [e for e in elements if e.kind == "ticket"]
    assert len(heads) == len(tickets)
    for ticket in tickets:
        assert _normal(str(ticket["title"])) in text
        for comment in ticket["comments"]:  # type: ignore[attr-defined]
            assert _normal(comment["body"]) in text
    metadata = [tuple(sorted(e.metadata.items())) for e in heads]
    assert len(set(metadata)) == len(metadata)
    _assert_units_are_contiguous(elements)


def _assert_units_are_contiguous(elements: list[Element]) -> None:
    """Each ticket's comments follow it and share its heading path and metadata."""
    current: Element | None = None
    for element in elements:
        if element.kind == "ticket":
            current = element
            continue
        assert current is not None
        assert element.location.heading_path == current.location.heading_path
        assert element.metadata == current.metadata


def test_real_jira_fixture_gives_54_ticket_units() -> None:
    """The curl-changelog Jira export: one ticket per upload, comments attributed, ADF text read."""
    elements = parse_json((REAL / "curl-changelog-jira.json").read_bytes())
    tickets = [e for e in elements if e.kind == "ticket"]

    assert len(tickets) == 54
    assert len({e.metadata["ticket_id"] for e in tickets}) == 54
    assert all(e.metadata["status"] == "Done" and "assignee" in e.metadata for e in tickets)
    assert any("curl (7.88.1-10+deb12u14) bookworm; urgency=medium" in e.text for e in tickets)
    _assert_units_are_contiguous(elements)


def test_real_github_jsonl_and_whisper_fixtures() -> None:
    """The sqlite3 issues JSONL gives 50 numbered tickets; the Whisper JSON gives timed cues."""
    issues = parse_jsonl((REAL / "sqlite3-changelog-issues.jsonl").read_bytes())
    tickets = [e for e in issues if e.kind == "ticket"]
    cues = parse_json((REAL / "python-policy-whisper.json").read_bytes())

    assert [e.location.line_start for e in tickets] == list(range(1, 51))
    assert any(e.kind == "comment" for e in issues)
    assert len(cues) == 400
    assert all(e.kind == "cue" and e.location.time_start is not None for e in cues)


@pytest.mark.parametrize(
    ("name", "parse"),
    [
        ("curl-changelog-jira.json", parse_json),
        ("python-policy-whisper.json", parse_json),
        ("sqlite3-changelog-issues.jsonl", parse_jsonl),
    ],
)
def test_fixture_phrase_occurs_in_parsed_text(name: str, parse: Callable[[bytes], list[Element]]) -> None:
    """phrases-messages.json names a phrase that the parsed text of each fixture contains verbatim."""
    phrase = json.loads((REAL / "phrases-messages.json").read_text())[name]
    text = " ".join(" ".join(e.text for e in parse((REAL / name).read_bytes())).split())

    assert phrase in text
