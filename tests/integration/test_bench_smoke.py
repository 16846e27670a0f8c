"""Tiny smoke runs of `cairn bench ingest` and `cairn bench parse` (measured by hand, not timed in tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.bench.ingest import bench_ingest
from cairn.bench.parse import bench_parse

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
    assert result["formats"] == {"Markdown": 1, "text": 1, "HTML": 1}
    assert {"parse", "embed", "index", "total"} <= set(result["stage_seconds"])


def test_bench_parse_compares_worker_counts_on_the_same_files(docs: Path) -> None:
    """Each worker count parses every file; the first run is the speed-up baseline."""
    result = bench_parse([docs], workers=[1, 2])
    assert result["files"] == 3
    assert [run["workers"] for run in result["runs"]] == [1, 2]
    for run in result["runs"]:
        assert run["parsed"] == 3
        assert run["elements"] > 3
        assert run["files_per_s"] > 0
    assert result["runs"][0]["speedup"] == 1.0
