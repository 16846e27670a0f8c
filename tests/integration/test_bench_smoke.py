"""A tiny smoke run of `cairn bench ingest` (benchmarks are measured by hand, not timed in tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.bench.ingest import bench_ingest

pytestmark = pytest.mark.integration


def test_bench_ingest_reports_both_runs_on_the_same_chunks(docs: Path) -> None:
    """The benchmark ingests, re-embeds the same chunks raw, and reports rates, ratio and the machine."""
    result = bench_ingest([docs])
    assert result["files"] == 3
    assert result["failed"] == 0
    assert result["chunks"] > 0
    assert result["tokens"] > result["chunks"]
    assert result["ingest_chunks_per_s"] > 0
    assert result["raw_embed_chunks_per_s"] > 0
    assert result["ratio_ingest_to_raw"] > 0
    assert result["reingest_unchanged_files"] == 3
    assert result["machine"]["cores"] >= 1
