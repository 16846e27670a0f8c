"""Every supported format, from real text, ingests in one call and each file is found by its own phrase."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn import Cairn, IngestReport, Settings

pytestmark = pytest.mark.integration

FORMATS_DIR = Path(__file__).parents[1] / "fixtures" / "real" / "formats"


def _phrases() -> dict[str, str]:
    phrases: dict[str, str] = {}
    for path in sorted(FORMATS_DIR.glob("phrases-*.json")):
        phrases.update(json.loads(path.read_text()))
    return phrases


PHRASES = _phrases()
Ingested = tuple[Cairn, IngestReport, Path]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Ingested]:  # type: ignore[no-untyped-def]
    """One `cairn ingest` of a folder holding one real file of every format (the fixture files)."""
    root = tmp_path_factory.mktemp("formats")
    folder = root / "mixed"
    folder.mkdir()
    for name in PHRASES:
        shutil.copy(FORMATS_DIR / name, folder / name)
    instance = Cairn(Settings(home=root / "home"))
    instance._embedder = embedder
    report = instance.ingest([folder])
    yield instance, report, folder
    instance.close()


def test_every_file_ingests_without_failures(ingested: Ingested) -> None:
    """No file fails; only members cairn does not index (image attachments of the real emails) are skipped."""
    _, report, _ = ingested

    assert report.failed == []
    assert report.skipped, "the CPython test mailbox has GIF attachments, which must be listed as skipped"
    for skipped in report.skipped:
        assert " › " in skipped.path
        assert any(kind in skipped.error for kind in ("GIF", "Bitmap")), skipped.error
    assert report.ingested == len(PHRASES)
    assert sum(report.formats.values()) == len(PHRASES)
    expected = {"DOCX", "PPTX", "XLSX", "CSV", "JSON", "JSONL", "email", "mbox", "WebVTT", "SRT", "ZIP"}
    assert expected <= set(report.formats)
    assert {"parse", "chunk", "embed", "store", "index", "publish", "total"} <= set(report.seconds)


@pytest.mark.parametrize("name", sorted(PHRASES))
def test_each_file_is_found_in_the_top_3_by_its_own_phrase(name: str, ingested: Ingested) -> None:
    """A phrase that occurs only in this file brings it into the top 3 hybrid hits."""
    cairn, _, folder = ingested

    hits = cairn.search(PHRASES[name], k=3).hits

    assert f"{folder.name}/{name}" in [hit.source for hit in hits], [(h.source, h.text[:80]) for h in hits]


def _hit_for(cairn: Cairn, folder: Path, name: str) -> str:
    hit = next(h for h in cairn.search(PHRASES[name], k=3).hits if h.source == f"{folder.name}/{name}")
    return hit.location.label


def test_citations_use_each_formats_own_locations(ingested: Ingested) -> None:
    """Transcripts cite time codes, spreadsheets sheet and row, archives the member, slides the slide."""
    cairn, _, folder = ingested

    assert _hit_for(cairn, folder, "man-db-manual.vtt")[:2] == "00"
    assert "sheet " in _hit_for(cairn, folder, "distro-info-ubuntu.xlsx")
    assert "row" in _hit_for(cairn, folder, "distro-info-debian.csv")
    assert _hit_for(cairn, folder, "common-licenses.zip").startswith("licenses/Artistic.txt")
    assert _hit_for(cairn, folder, "zstd-readme.pptx").startswith("slide ")
