"""A 2,000-page PDF ingests within the stated memory bound.

The bound (docs/architecture.md, "Parsing"): a parser process may use at most
``parse_memory_mb`` of address space (here 1,024 MiB, enforced by RLIMIT_AS), because PDFs are
read one page at a time; the ingest process holds one document's text plus one embedding batch
(the model runs in the embedding worker), so it grows by less than 256 MiB for this file. RSS is
sampled every 20 ms in this process and in its children (parsers and the embedding worker).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest
from tests.unit.pdf_fixture import build_pdf

from cairn import Cairn, Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PAGES = 2000
WARM_UP_PAGES = 200
MIB = 1024 * 1024


class _PeakRss:
    """Samples the resident memory of this process and of its parser processes until stopped."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.baseline = self.me.memory_info().rss
        self.parent_peak = self.baseline
        self.worker_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.parent_peak = max(self.parent_peak, self.me.memory_info().rss)
            for child in self.me.children(recursive=True):
                try:
                    self.worker_peak = max(self.worker_peak, child.memory_info().rss)
                except psutil.NoSuchProcess:
                    continue

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(work: Path) -> dict[str, float]:
    """Ingest the 2,000-page PDF in this process (after a warm-up extract) and report memory and what was found."""
    pages = [[[f"Page {n} of the maintenance log records inspection number {n * 7919}."]] for n in range(1, PAGES + 1)]
    pdf = work / "docs" / "maintenance-log.pdf"
    pdf.parent.mkdir()
    pdf.write_bytes(build_pdf(pages))
    small = work / "warm-up" / "maintenance-log-extract.pdf"
    small.parent.mkdir()
    small.write_bytes(build_pdf(pages[:WARM_UP_PAGES]))
    # Documents are embedded in the embedding worker process, as by default: the bound is on what the ingest
    # process itself holds, and the model's working memory is the worker's (sampled with the parser's).
    cairn = Cairn(Settings(home=work / "home", parse_memory_mb=1024, embed_worker=True))
    try:
        # Warm the pipeline on a short extract of the same log first (worker started, engine client's buffers
        # allocated), so that the bound measures what the large file costs.
        cairn.ingest([small.parent])
        with _PeakRss() as peak:
            report = cairn.ingest([pdf.parent])
        last = cairn.search(f"inspection number {PAGES * 7919}", k=3, mode="keyword").hits
        found_last = any(
            h.location.page is not None and h.location.page <= PAGES <= (h.location.page_end or h.location.page)
            for h in last
        )
    finally:
        cairn.close()
    return {
        "failed": len(report.failed),
        "pdfs": report.formats.get("PDF", 0),
        "found_last": found_last,
        "parent_grew_mib": (peak.parent_peak - peak.baseline) / MIB,
        "children_peak_mib": peak.worker_peak / MIB,
    }


def test_a_2000_page_pdf_ingests_within_the_memory_bound(tmp_path: Path) -> None:
    """Every page is indexed (the last one found); parser and ingest memory stay inside the bound.

    Measured in a fresh process: in the test runner's own process, memory that earlier tests left to the
    allocator made the growth depend on the order the tests ran in."""
    script = "import json, sys; from pathlib import Path; from tests.integration.test_large_pdf import measure; "
    script += "print(json.dumps(measure(Path(sys.argv[1]))))"
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["failed"] == 0
    assert result["pdfs"] == 1
    assert result["found_last"]
    assert result["children_peak_mib"] < 1024
    assert result["parent_grew_mib"] < 256, result
    print(f"parent grew {result['parent_grew_mib']:.0f} MiB, children peak {result['children_peak_mib']:.0f} MiB")
