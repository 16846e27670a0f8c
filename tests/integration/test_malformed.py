"""A generated corpus of malformed and hostile files: each gets a reason, none stops or spoils the run."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import docx
import pytest
from tests.unit.pdf_fixture import build_pdf

from cairn import Cairn, Settings

pytestmark = pytest.mark.integration


def _docx_bytes(text: str) -> bytes:
    document = docx.Document()
    document.add_heading("Hangar", level=1)
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels and holds almost no data: a decompression bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _nested_zip(levels: int) -> bytes:
    data, name = b"the innermost text", "core.txt"
    for level in range(levels):
        data, name = _zip({name: data}), f"level{level}.zip"
    return data


# name -> (bytes, expected outcome, a word the reason must contain)
MALFORMED: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "truncated.docx": (lambda: _docx_bytes("cut short")[:900], "failed", "Word"),
    "noise.xlsx": (lambda: random.Random(1).randbytes(5000), "failed", "Excel"),
    "bomb.zip": (lambda: _zip({"zeros.txt": bytes(30 * 1024 * 1024)}), "failed", "bomb"),
    "deep.zip": (lambda: _nested_zip(6), "failed", "nested"),
    "bomb.png": (lambda: _png_header_only(100_000, 100_000), "failed", "pixels"),
    "text-named.png": (lambda: b"just words, not an image at all\n", "failed", "image"),
    "empty.md": (lambda: b"", "failed", "empty"),
    "blank.txt": (lambda: b"  \n\t\n   \n", "failed", "empty"),
    "broken.json": (lambda: b'{"tickets": [{"id": 1, "title": "x"', "failed", "JSON"),
    # One bad line costs only that line (tests/unit/test_salvage.py); no good line fails the file.
    "no-good-line.jsonl": (lambda: b'{"id": 1, "title": \n{not json}\n', "failed", "line 1"),
    "bad-time.vtt": (lambda: b"WEBVTT\n\n00:00:xx.000 --> 00:00:02.000\nhello\n", "failed", "line"),
    "locked.pdf": (lambda: build_pdf([[["secret"]]], password_protected=True), "failed", "password"),
    "huge.md": (lambda: "".join(f"- item {i} of a list\n" for i in range(400_000)).encode(), "failed", "longer than"),
    "garbage.eml": (lambda: random.Random(2).randbytes(4000), "skipped", "binary"),
    "program.py": (lambda: b"\x7fELF\x02\x01\x01\x00" + bytes(500), "skipped", "executable"),
    "legacy.doc": (lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "skipped", "legacy Microsoft Office"),
}

# Files that look wrong but are sound: they must be ingested under the type their content has.
SOUND: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "latin1.txt": (
        lambda: "Caf\xe9 cr\xe8me: the quayside kiosk sells zeppelin tickets.\n".encode("latin-1"),
        "text",
        "kiosk",
    ),
    "actually-a-pdf.txt": (lambda: build_pdf([[["The lighthouse keeper logs every storm."]]]), "PDF", "lighthouse"),
    "actually-a-docx.pdf": (lambda: _docx_bytes("The hangar doors open at dawn for the airship."), "DOCX", "hangar"),
    "stray-nuls.log": (lambda: b"boot ok\x00\x00\x00\n\nthe furnace reached temperature\n", "text", "furnace"),
}


@pytest.fixture
def hostile(tmp_path: Path, embedder) -> Iterator[tuple[Cairn, Path, Path]]:  # type: ignore[no-untyped-def]
    good = tmp_path / "good"
    good.mkdir()
    (good / "policy.md").write_text("# Travel\n\nTrain travel is booked through the travel desk.\n")
    bad = tmp_path / "bad"
    bad.mkdir()
    for name, (build, _, _) in (MALFORMED | SOUND).items():
        (bad / name).write_bytes(build())
    instance = Cairn(Settings(home=tmp_path / "home", parse_timeout_s=3))
    instance._embedder = embedder
    yield instance, good, bad
    instance.close()


def test_every_malformed_file_is_reported_with_its_reason_and_nothing_is_lost(
    hostile: tuple[Cairn, Path, Path],
) -> None:
    """Bombs, truncations, wrong types, bad encodings and a hang each cost only their own file."""
    cairn, good, bad = hostile
    before = cairn.ingest([good])
    assert before.ingested == 1

    report = cairn.ingest([bad])

    outcomes = {Path(f.path).name: ("failed", f.error) for f in report.failed}
    outcomes |= {Path(f.path).name: ("skipped", f.error) for f in report.skipped}
    for name, (_, expected, word) in MALFORMED.items():
        assert name in outcomes, f"{name} was not reported"
        outcome, reason = outcomes[name]
        assert outcome == expected, (name, reason)
        assert word.lower() in reason.lower(), (name, reason)
        assert "Traceback" not in reason
    assert set(outcomes) == set(MALFORMED)
    assert report.ingested == len(SOUND)
    sources = {Path(d.source).name: d.mime for d in cairn.documents()}
    assert set(sources) == {"policy.md", *SOUND}
    for name, (_, format_name, word) in SOUND.items():
        hits = cairn.search(word, k=3, mode="keyword").hits
        assert name in [Path(h.source).name for h in hits], (name, format_name)
    assert report.formats == {"text": 2, "PDF": 1, "DOCX": 1}
    # What was ingested before the hostile run is untouched.
    assert Path(cairn.search("How is train travel booked?", k=1).hits[0].source).name == "policy.md"
