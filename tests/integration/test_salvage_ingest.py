"""Damaged files through the whole ingest: the readable content is searchable and the report says what was left out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cairn import Cairn
from cairn.cli import app

pytestmark = pytest.mark.integration

FORMATS = Path(__file__).parent.parent / "fixtures" / "real" / "formats"


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    """Three real files, each with one piece of local damage."""
    folder = tmp_path / "damaged"
    folder.mkdir()
    srt = (FORMATS / "users-and-groups.srt").read_text()
    (folder / "talk.srt").write_text(srt.replace("00:00:06,100 --> 00:00:09,300", "00:00:09,300 --> 00:00:06,100"))
    lines = (FORMATS / "sqlite3-changelog-issues.jsonl").read_text().splitlines()
    lines[6] = lines[6][: len(lines[6]) // 2]
    (folder / "issues.jsonl").write_text("\n".join(lines) + "\n")
    rows = (FORMATS / "distro-info-debian.csv").read_text().split("\n")
    rows[3] = rows[3].replace("Bo,", '"Bo,', 1)
    (folder / "distro.csv").write_text("\n".join(rows))
    return folder


def test_damaged_files_are_ingested_with_warnings_naming_the_damage(cairn: Cairn, damaged: Path) -> None:
    """Each damaged file is ingested, not failed; its good parts are searchable; the report names each problem."""
    report = cairn.ingest([damaged])

    assert (report.ingested, report.failed) == (3, [])
    where = {Path(w.path).name: w.message for w in report.warnings}
    assert set(where) == {"talk.srt", "issues.jsonl", "distro.csv"}
    assert where["talk.srt"].startswith("line 6: the cue ends")
    assert where["issues.jsonl"].startswith("line 7 is not valid JSON")
    assert where["distro.csv"].startswith("row 4: a quote opened there is never closed")
    # What followed the damage is indexed: the next cue, later tickets, the rows after the stray quote.
    for phrase, name in (
        ("master files in sync on all Debian systems", "talk.srt"),
        ("Hamm hamm 1997-06-05", "distro.csv"),
    ):
        hits = cairn.search(phrase, k=5, mode="keyword").hits
        assert name in [Path(hit.source).name for hit in hits], phrase


def test_cli_ingest_json_lists_the_warnings_and_exits_0(
    damaged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cairn ingest --json` carries per-file warnings; damage that was worked around is not a failure."""
    monkeypatch.setenv("CAIRN_HOME", str(tmp_path / "home"))
    runner = CliRunner()

    result = runner.invoke(app, ["ingest", str(damaged), "--json"], catch_exceptions=False)

    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["failed"] == []
    assert sorted(Path(w["path"]).name for w in report["warnings"]) == ["distro.csv", "issues.jsonl", "talk.srt"]
    assert all(set(w) == {"path", "message"} for w in report["warnings"])

    human = runner.invoke(app, ["ingest", str(damaged / "talk.srt"), "-c", "again"], catch_exceptions=False)
    assert "Ingested with warnings" in human.stdout
    assert "the cue ends" in human.stdout


def test_damaged_office_files_and_pdf_are_ingested_with_warnings(cairn: Cairn, tmp_path: Path) -> None:
    """A Word file with a bad sector in its styles and a PDF with a broken page are ingested and searchable."""
    from tests.unit.pdf_fixture import build_pdf
    from tests.unit.test_parse_damaged_office import DOCX, _bad_sector

    folder = tmp_path / "office"
    folder.mkdir()
    (folder / "uids.docx").write_bytes(_bad_sector(DOCX, "word/styles.xml"))
    pdf = build_pdf([[["The first page speaks of lighthouse keepers."]], [["A page lost to damage."]]])
    start = pdf.index(b"6 0 obj\n") + len(b"6 0 obj\n")
    (folder / "notes.pdf").write_bytes(
        pdf[:start] + b"\x00" * (pdf.index(b"\nendobj", start) - start) + pdf[pdf.index(b"\nendobj", start) :]
    )

    report = cairn.ingest([folder])

    assert (report.ingested, report.failed) == (2, [])
    where = {Path(w.path).name: w.message for w in report.warnings}
    assert where == {
        "uids.docx": "the part word/styles.xml could not be read (its bytes do not match their checksum); "
        "it was left out",
        "notes.pdf": "page 2 could not be loaded (Failed to load page); it was left out",
    }
    for phrase, name in (
        ("If you do change it you void your warranty", "uids.docx"),
        ("lighthouse keepers", "notes.pdf"),
    ):
        assert name in [Path(hit.source).name for hit in cairn.search(phrase, k=5, mode="keyword").hits], phrase
