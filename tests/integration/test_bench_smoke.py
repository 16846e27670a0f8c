"""Tiny smoke runs of every `cairn bench` command: the JSON has its shape and the PNGs are written.

Benchmarks are measured by hand (docs/benchmarks.md); nothing here asserts a time or a ratio's value.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.bench.ingest import bench_ingest
from cairn.bench.latency import bench_latency
from cairn.bench.parse import bench_parse
from cairn.bench.peers import PEERS, coverage
from cairn.bench.recall import bench_recall
from cairn.bench.scale import bench_scale

pytestmark = pytest.mark.integration


@pytest.fixture
def pages(tmp_path: Path) -> Path:
    """Six small plain-text pages of real-looking prose."""
    folder = tmp_path / "pages"
    folder.mkdir()
    topics = ["leave", "batteries", "regions", "invoices", "backups", "badges"]
    for n, topic in enumerate(topics):
        body = " ".join(
            f"Section {i} explains how the {topic} policy applies to team {n} and what to do when it fails."
            for i in range(12)
        )
        (folder / f"{topic}.txt").write_text(f"{topic.title()} policy\n\n{body}\n")
    return folder


def test_bench_ingest_reports_both_runs_on_the_same_chunks(docs: Path) -> None:
    """The benchmark ingests, re-embeds the same chunks raw, and reports rates, ratio and the machine."""
    result = bench_ingest([docs])
    assert result["files"] == 3
    assert result["failed"] == 0
    assert result["chunks"] > 0
    assert result["tokens"] > result["chunks"]
    assert result["ingest_chunks_per_s"] > 0
    assert result["ingest_pages_per_s"] > 0
    assert result["raw_embed_chunks_per_s"] > 0
    assert result["raw_embed_tokens_per_s"] > 0
    assert result["ratio_ingest_to_raw"] > 0
    assert result["lost_coverage"] == 0.0  # cairn's chunks fit the model's input
    assert result["reingest_unchanged_files"] == 3
    assert result["machine"]["cores"] >= 1
    assert result["formats"] == {"Markdown": 1, "text": 1, "HTML": 1}
    assert {"parse", "embed", "index", "total"} <= set(result["stage_seconds"])
    assert result["peers"] == []


def test_coverage_counts_tokens_past_the_model_limit_as_lost() -> None:
    """A chunk of 300 tokens under a 254-token limit loses 46 of them; short chunks lose nothing."""
    result = coverage([300, 100], 254)
    assert result["chunk_tokens"] == 400
    assert result["embedded_tokens"] == 354
    assert result["lost_coverage"] == pytest.approx(46 / 400, abs=1e-4)
    assert result["chunks_over_limit"] == 1


@pytest.mark.slow
def test_bench_ingest_runs_each_peer_on_the_same_files(pages: Path) -> None:
    """With peers, LangChain and LlamaIndex each ingest every page into Milvus Lite and report speed and coverage."""
    result = bench_ingest([pages], peers=PEERS)
    assert [peer["peer"] for peer in result["peers"]] == list(PEERS)
    for peer in result["peers"]:
        assert "error" not in peer, peer
        assert peer["pages"] == 6
        assert peer["rows"] == peer["chunks"] > 0
        assert peer["seconds"] > 0
        assert peer["cairn_speedup"] > 0
        assert 0.0 <= peer["lost_coverage"] < 1.0
        assert peer["model_input_limit_tokens"] == 254


@pytest.mark.parametrize("http", [False, True], ids=["in-process", "http"])
def test_bench_latency_reports_three_phases_and_draws_the_timeline(pages: Path, tmp_path: Path, http: bool) -> None:
    """Idle, ingest and index phases each report percentiles and QPS; ratios and the PNG timeline are written."""
    png = tmp_path / "latency.png"
    result = bench_latency([pages], clients=2, seconds=1.5, http=http, plot=png, index_rows=300, query_pool=10)
    assert set(result["phases"]) == {"idle", "ingest", "index"}
    for phase in result["phases"].values():
        assert phase["queries"] > 0
        assert phase["errors"] == 0
        assert phase["qps"] > 0
        assert phase["latency_ms"]["p50"] <= phase["latency_ms"]["p99"]
        if not http:
            assert {"embed_ms", "engine_ms", "cairn_overhead_ms"} <= set(phase)
    assert result["ingested_during_ingest_phase"] >= 1
    assert result["index_builds_during_index_phase"] >= 1
    assert result["ratio_ingest_p99_to_idle_p99"] > 0
    assert png.stat().st_size > 10_000


def test_bench_recall_sweeps_the_lite_indexes(tmp_path: Path) -> None:
    """FLAT is exact; IVF_FLAT is swept over nprobe; every run reports recall@10 and latency; the PNG is written."""
    png = tmp_path / "recall.png"
    result = bench_recall([500], queries=5, plot=png)
    indexes = {run["index"] for run in result["runs"]}
    assert indexes == {"FLAT", "IVF_FLAT", "AUTOINDEX"}
    flat = next(run for run in result["runs"] if run["index"] == "FLAT")
    assert flat["recall_at_10"] == 1.0
    assert [run["search_value"] for run in result["runs"] if run["index"] == "IVF_FLAT"] == [1, 4, 16, 64]
    assert all(0.0 <= run["recall_at_10"] <= 1.0 and run["search_p50_ms"] > 0 for run in result["runs"])
    assert png.stat().st_size > 10_000


def test_bench_recall_can_be_limited_to_chosen_indexes() -> None:
    result = bench_recall([300], queries=3, indexes=["flat"])
    assert {run["index"] for run in result["runs"]} == {"FLAT"}


def test_bench_scale_measures_every_mode_at_every_size(tmp_path: Path) -> None:
    """Each size reports dense, keyword and hybrid (weighted, its searches at once and in turn, and RRF fusion)
    p50/p99 on Milvus Lite; the PNG is written."""
    png = tmp_path / "scale.png"
    result = bench_scale([300, 100], queries=5, plot=png)
    assert [r["size"] for r in result["results"]] == [100, 300]
    for entry in result["results"]:
        for mode in ("dense", "keyword", "hybrid", "hybrid_in_turn", "hybrid_rrf"):
            assert 0 < entry[mode]["p50_ms"] <= entry[mode]["p99_ms"]
    assert png.stat().st_size > 10_000


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


@pytest.mark.server
@pytest.mark.slow
def test_bench_recall_on_the_server_sweeps_hnsw_ef_and_ivf_nprobe() -> None:
    """On a stack of its own, the server adds HNSW (swept over ef) and IVF_SQ8 to FLAT and IVF_FLAT."""
    result = bench_recall([500], server=True, queries=5)
    assert result["engine"].startswith("milvus-server")
    assert {run["index"] for run in result["runs"]} == {"FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW"}
    assert [run["search_value"] for run in result["runs"] if run["index"] == "HNSW"] == [16, 32, 64, 128, 256]
    assert all("error" not in run for run in result["runs"])


@pytest.mark.server
@pytest.mark.slow
def test_bench_scale_on_the_server_measures_dense_search() -> None:
    """The Milvus 2.3 server has no BM25: only dense search is measured, at every size."""
    result = bench_scale([100, 200], server=True, queries=5)
    assert result["engine"].startswith("milvus-server")
    for entry in result["results"]:
        assert entry["dense"]["p50_ms"] > 0
        assert "keyword" not in entry


def test_bench_ray_ingest_compares_the_local_path_with_ray_on_the_same_chunks(docs: Path) -> None:
    """`cairn bench ingest --engine ray`: both paths embed the same chunks (a fresh home each) and report speed."""
    from cairn.bench.ray_ingest import bench_ray_ingest

    result = bench_ray_ingest([docs], workers=[1])
    local, ray_1 = result["runs"]["local"], result["runs"]["ray_1"]
    assert local["files"] == ray_1["files"] == 3
    assert local["chunks"] == ray_1["chunks"] > 0
    assert ray_1["same_chunks_as_local"] is True
    assert ray_1["stage_seconds"]["embed"] > 0.05  # really embedded: no cache carried over from the local run
    assert ray_1["layout"]["embedders"] == 1
    assert ray_1["scaling_efficiency"] == 1.0
    assert result["ray_overhead_at_1"] > 0
    assert result["lost_coverage"] == 0.0


def test_bench_cold_times_new_ingest_processes_against_the_bare_model_on_the_same_text(pages: Path) -> None:
    from cairn.bench.cold import bench_cold

    result = bench_cold(pages, runs=1)
    assert result["files"] == 6
    assert result["text_tokens"] > 0
    assert result["bare_windows"] >= 6  # at least one window per file
    for mode in ("cold_worker", "cold_in_process"):
        (run,) = result[mode]["runs"]
        assert run["chunks"] > 0
        assert run["tokens"] >= result["text_tokens"]  # every token embedded (overlap adds some)
        assert run["wall_s"] > run["pipeline_s"] > 0
        assert result[mode]["ratio_to_bare"] > 0


def test_bench_cold_refuses_a_corpus_that_is_not_plain_text(tmp_path: Path) -> None:
    from cairn.bench.cold import bench_cold
    from cairn.errors import InvalidRequest

    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4\n")
    with pytest.raises(InvalidRequest, match="plain-text"):
        bench_cold(tmp_path)
