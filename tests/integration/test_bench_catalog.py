"""A tiny run of `cairn bench catalog`: the JSON has its shape, every timing is positive and the PNG is written.

The numbers themselves are measured by hand (docs/benchmarks.md); nothing here asserts a time or a ratio's value.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cairn.bench.catalog import run_catalog_bench
from cairn.cli import app

pytestmark = pytest.mark.integration


def test_bench_catalog_reports_commit_and_startup_per_size_beside_the_old_manifest(tmp_path: Path) -> None:
    """Each size has commit p50/p99 with its steps, a start-up measured in a new process, and the manifest's costs."""
    plot = tmp_path / "catalog.png"
    result = run_catalog_bench((200, 2000), batches=3, old_batches=2, startup_runs=2, plot=plot)

    assert result["benchmark"] == "catalog"
    assert result["backend"] == "sqlite"
    assert result["machine"]["cores"] >= 1
    assert result["machine"]["sqlite"]
    assert result["batch"]["chunks"] == 256
    assert [entry["documents"] for entry in result["results"]] == [200, 2000]
    for entry in result["results"]:
        commit = entry["commit"]
        assert 0 < commit["p50_s"] <= commit["p99_s"]
        assert set(commit["steps_p50_s"]) == {"state", "reserve", "publish", "sweep"}
        assert all(seconds > 0 for seconds in commit["steps_p50_s"].values())
        startup = entry["startup"]
        assert 0 < startup["p50_s"] < startup["process_p50_s"]
        assert startup["peak_rss_mib"] > 0
        assert entry["database_bytes"] > 0
        old = entry["old_manifest"]
        assert 0 < old["commit"]["p50_s"] <= old["commit"]["p99_s"]
        assert old["load_p50_s"] >= 0
        assert old["manifest_bytes"] > 0
    assert result["flat"]["commit_p50_max_over_min"] >= 1
    assert isinstance(result["flat"]["within_2x"], bool)
    assert plot.stat().st_size > 0
    assert result["plot"] == str(plot)


def test_bench_catalog_leaves_the_old_manifest_out_above_its_limit(tmp_path: Path) -> None:
    """Sizes above ``old_manifest_up_to`` have no manifest numbers (``None``), and the notes say why."""
    result = run_catalog_bench((300,), batches=2, startup_runs=1, old_manifest_up_to=100)

    assert result["results"][0]["old_manifest"] is None
    assert any("not measured above 100 documents" in note for note in result["notes"])


def test_cli_bench_catalog_writes_the_json_and_the_png_beside_it(tmp_path: Path) -> None:
    """`cairn bench catalog --sizes ... --out X.json` writes X.json and X.png."""
    out = tmp_path / "bench" / "catalog.json"
    done = CliRunner().invoke(
        app,
        [
            "bench",
            "catalog",
            "--sizes",
            "150,300",
            "--batches",
            "2",
            "--startup-runs",
            "1",
            "--old-manifest-up-to",
            "0",
            "--out",
            str(out),
        ],
    )

    assert done.exit_code == 0, done.output
    written = json.loads(out.read_text())
    assert [entry["documents"] for entry in written["results"]] == [150, 300]
    assert out.with_suffix(".png").stat().st_size > 0


def test_catalog_reads_bench_times_a_searchs_catalog_reads() -> None:
    """`cairn bench catalog-reads` fills a scratch catalog and reports positive p50/p99 for one search's reads."""
    from cairn.bench.catalog_reads import run_catalog_read_bench

    result = run_catalog_read_bench(size=500, searches=20, k=10)
    assert (result["backend"], result["documents"], result["k"], result["searches"]) == ("sqlite", 500, 10, 20)
    assert 0 < result["p50_ms"] <= result["p99_ms"]
