"""Salvage, not rejection: a file with local damage keeps everything readable and says what it left out.

Each case damages real text from tests/fixtures/real the way such files are damaged in the wild.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from cairn.errors import ParseError
from cairn.parse import parse_file
from cairn.parse.salvage import MAX_WARNINGS

REAL = Path(__file__).parent.parent / "fixtures" / "real"
FORMATS = REAL / "formats"


def _messages(path: str, data: bytes) -> tuple[list[str], list[str]]:
    """The element texts and the warning messages of parsing ``data`` as the file ``path``."""
    parsed = parse_file(data, path=path)
    assert all(warning.path == path for warning in parsed.warnings)
    return [element.text for element in parsed.elements], [warning.message for warning in parsed.warnings]


def test_srt_cue_that_ends_before_it_starts_is_left_out_and_named() -> None:
    """One cue with backwards times costs that cue; the other 215 are kept, the warning names its line."""
    original = (FORMATS / "users-and-groups.srt").read_text()
    damaged = original.replace("00:00:06,100 --> 00:00:09,300", "00:00:09,300 --> 00:00:06,100")

    texts, warnings = _messages("users-and-groups.srt", damaged.encode())

    assert len(texts) == original.count("-->") - 1
    assert "The update-passwd tool keeps the entries in these" not in texts
    assert "master files in sync on all Debian systems." in texts
    assert warnings == ["line 6: the cue ends (00:00:06,100) before it starts (00:00:09,300); the cue was left out"]


def test_vtt_cue_without_a_timing_line_is_left_out_and_named() -> None:
    """A WebVTT cue whose timing line was lost is named by its line instead of vanishing silently."""
    original = (FORMATS / "man-db-manual.vtt").read_text()
    damaged = original.replace("cue-2\n00:00:05.500 --> 00:00:10.700\n", "cue-2\n", 1)

    texts, warnings = _messages("man-db-manual.vtt", damaged.encode())

    assert len(texts) == original.count("-->") - 1
    assert texts[0] == "man-db - the database cached manual pager suite"
    assert warnings == ["line 9: the cue 'cue-2' has no timing line; the cue was left out"]


def test_subtitles_with_no_readable_cue_still_fail_naming_the_damage() -> None:
    """Only a wholly unreadable file fails, and its error quotes the first problem."""
    with pytest.raises(ParseError, match=r"nothing in the file could be read: line 3: .*ends"):
        parse_file(b"WEBVTT\n\n00:00:05.000 --> 00:00:01.000\nbackwards\n", path="only.vtt")


def test_jsonl_bad_line_is_left_out_and_named() -> None:
    """A ticket export with one truncated line keeps the other 49 tickets; the warning names line 7."""
    lines = (FORMATS / "sqlite3-changelog-issues.jsonl").read_text().splitlines()
    lines[6] = lines[6][: len(lines[6]) // 2]  # a line cut short, as by a crashed exporter
    titles = [json.loads(line)["title"] for number, line in enumerate(lines) if number != 6]

    texts, warnings = _messages("issues.jsonl", "\n".join(lines).encode())

    assert [title for title in titles if not any(title in text for text in texts)] == []
    assert len(warnings) == 1
    assert warnings[0].startswith("line 7 is not valid JSON: ")
    assert warnings[0].endswith("; the line was left out")


def test_csv_stray_quote_and_ragged_row_cost_only_their_rows() -> None:
    """A quote never closed is read as a plain character; a row wider than the header keeps its values."""
    lines = (FORMATS / "distro-info-debian.csv").read_text().split("\n")
    lines[3] = lines[3].replace("Bo,", '"Bo,', 1)  # row 4: a quote that would swallow the rest of the file
    lines[8] += ",x,extra,values"  # row 9: three fields too many

    parsed = parse_file("\n".join(lines).encode(), path="distro.csv")

    rows = {element.location.row_start: element.text for element in parsed.elements}
    assert len(rows) == len([line for line in lines if line.strip()]) - 1  # every row but the header
    assert rows[4].startswith('version: 1.3; codename: "Bo; series: bo')
    assert rows[5].startswith("version: 2.0; codename: Hamm")
    assert rows[9].endswith("eol-lts: x; eol-elts: extra; column 9: values")
    assert [w.message for w in parsed.warnings] == [
        "row 4: a quote opened there is never closed; the row was read with its quotes as plain characters",
        "row 9 has 9 fields where the header has 8; its values beyond the header were kept as column 9 and on",
    ]


def test_utf8_text_with_invalid_bytes_is_decoded_with_replacement_and_named() -> None:
    """A few invalid bytes in UTF-8 text are replaced in place; the rest is not read as cp1252 mojibake."""
    text = (REAL / "docs" / "apache-2.0.txt").read_text().replace("Apache License", "Apache Licence — Zürich", 1)
    data = text.encode()
    cut = data.index(b"TERMS AND CONDITIONS")
    damaged = data[:cut] + b"\xe2\x80" + data[cut:]  # a dash cut short, two bytes of three

    texts, warnings = _messages("license.txt", damaged)

    assert "Apache Licence — Zürich" in texts[0]
    assert "\N{REPLACEMENT CHARACTER}TERMS AND CONDITIONS" in "\n".join(texts)
    line = damaged[:cut].count(b"\n") + 1
    assert warnings == [
        f"line {line} (byte {cut}): 2 bytes that are not valid UTF-8 were replaced with \N{REPLACEMENT CHARACTER}"
    ]


def test_latin1_text_is_still_read_as_latin1_without_a_warning() -> None:
    """Text with no valid UTF-8 sequence at all is another encoding, not damaged UTF-8."""
    texts, warnings = _messages("kiosk.txt", "Caf\xe9 cr\xe8me at the kiosk.\n".encode("latin-1"))

    assert texts == ["Café crème at the kiosk."]
    assert warnings == []


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_with_a_corrupt_member_keeps_the_others_and_names_it() -> None:
    """Flipped bytes in one member's compressed data cost that member; warnings of members carry its name."""
    licence = (REAL / "docs" / "mpl-2.0.txt").read_bytes()
    tickets = (FORMATS / "sqlite3-changelog-issues.jsonl").read_bytes().replace(b'{"number": 3,', b'{"number": 3', 1)
    data = bytearray(
        _zip(
            {"mpl.txt": licence, "apache.txt": (REAL / "docs" / "apache-2.0.txt").read_bytes(), "issues.jsonl": tickets}
        )
    )
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("mpl.txt")
    body = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[body + 100 : body + 110] = bytes(10)  # damage inside the compressed stream

    parsed = parse_file(bytes(data), path="bundle.zip")

    members = {element.location.member for element in parsed.elements}
    assert members == {"apache.txt", "issues.jsonl"}
    assert [failure.path for failure in parsed.failed] == ["bundle.zip › mpl.txt"]
    assert [(w.path, w.message.split(" is ")[0]) for w in parsed.warnings] == [("bundle.zip › issues.jsonl", "line 3")]


def test_email_with_a_broken_attachment_keeps_body_and_other_attachments() -> None:
    """A truncated base64 attachment costs only itself: the body and the sound attachment are indexed."""
    licence = (REAL / "docs" / "mpl-2.0.txt").read_text()
    data = (
        "From: a@example.org\nSubject: Licences\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nBoth licences are attached.\n"
        '--B\nContent-Type: text/plain\nContent-Disposition: attachment; filename="mpl.txt"\n\n'
        f"{licence}\n"
        '--B\nContent-Type: application/pdf\nContent-Disposition: attachment; filename="scan.pdf"\n'
        "Content-Transfer-Encoding: base64\n\nJVBERi0xL\n--B--\n"  # cut short mid-quantum
    ).encode()

    parsed = parse_file(data, path="licences.eml")

    assert any("Both licences are attached." in element.text for element in parsed.elements)
    assert any(element.location.member == "mpl.txt" for element in parsed.elements)
    assert [failure.path for failure in parsed.failed] == ["licences.eml › scan.pdf"]


def test_warnings_of_a_file_damaged_throughout_are_capped() -> None:
    """Hundreds of bad lines give MAX_WARNINGS messages and a count of the rest, not hundreds of lines."""
    data = b"\n".join([b'{"id": 0, "title": "kept"}'] + [b"{broken" for _ in range(100)])

    texts, warnings = _messages("many.jsonl", data)

    assert len(texts) == 1
    assert len(warnings) == MAX_WARNINGS + 1
    assert warnings[-1] == f"and {100 - MAX_WARNINGS} more problems like these"
