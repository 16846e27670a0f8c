"""A 2,000-page PDF ingests within the stated memory bound.

The bound (docs/architecture.md, "Parsing"): a parser process may use at most
``parse_memory_mb`` of address space (here 1,024 MiB, enforced by RLIMIT_AS), because PDFs are
read one page at a time; the ingest process holds one document's text plus one embedding batch
(the model runs in the embedding worker), so it grows by less than 256 MiB for this file. RSS is
sampled every 20 ms in this process and in its children (parsers and the embedding worker).
"""

from __future__ import annotations

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


def test_a_2000_page_pdf_ingests_within_the_memory_bound(tmp_path: Path) -> None:
    """Every page is indexed (first and last found); parser and ingest memory stay inside the bound."""
    pages = [[[f"Page {n} of the maintenance log records inspection number {n * 7919}."]] for n in range(1, PAGES + 1)]
    pdf = tmp_path / "docs" / "maintenance-log.pdf"
    pdf.parent.mkdir()
    pdf.write_bytes(build_pdf(pages))
    small = tmp_path / "warm-up" / "maintenance-log-extract.pdf"
    small.parent.mkdir()
    small.write_bytes(build_pdf(pages[:WARM_UP_PAGES]))
    # Documents are embedded in the embedding worker process, as by default: the bound is on what the ingest
    # process itself holds, and the model's working memory is the worker's (sampled with the parser's).
    cairn = Cairn(Settings(home=tmp_path / "home", parse_memory_mb=1024, embed_worker=True))
    try:
        # Warm the pipeline on a short extract of the same log first (worker started, engine client's buffers
        # allocated), so that the bound measures what the large file costs.
        cairn.ingest([small.parent])
        with _PeakRss() as peak:
            report = cairn.ingest([pdf.parent])
        assert report.failed == []
        assert report.formats == {"PDF": 1}
        last = cairn.search(f"inspection number {PAGES * 7919}", k=3, mode="keyword").hits
        assert any(
            h.location.page is not None and h.location.page <= PAGES <= (h.location.page_end or h.location.page)
            for h in last
        )
    finally:
        cairn.close()

    assert peak.worker_peak < 1024 * MIB
    assert peak.parent_peak - peak.baseline < 256 * MIB, (peak.parent_peak - peak.baseline) / MIB
    print(
        f"parent grew {(peak.parent_peak - peak.baseline) / MIB:.0f} MiB, parser peak {peak.worker_peak / MIB:.0f} MiB"
    )
