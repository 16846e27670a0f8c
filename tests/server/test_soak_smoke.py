"""The mixed-load soak in small (`cairn bench soak`, issue 22): about a minute of reads, uploads, ACL changes,
deletions and key revocations against two `cairn serve` replicas on the stack, Milvus restarted during it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cairn.bench.soak import bench_soak
from cairn.cli import app
from cairn.stack import LocalStack

OPERATIONS = {"search", "ask", "upload", "acl", "delete", "key_create", "key_revoke", "revoked_probe"}


def _shaped_as_operations(table: dict[str, Any]) -> None:
    for op, entry in table.items():
        assert set(entry) == {"requests", "errors", "latency_ms"}, op
        assert set(entry["latency_ms"]) == {"p50", "p95", "p99"}, op
        assert 0 <= entry["errors"] <= entry["requests"], op


def test_a_minute_of_mixed_load_with_milvus_restarted_loses_nothing_and_shows_no_reader_too_much(
    stack: tuple[LocalStack, dict[str, str]], stack_env: dict[str, str], tmp_path: Path
) -> None:
    """60 s of load with Milvus restarted a quarter of the way in: the consistency check holds (every acknowledged
    document present once in the catalog and in search, every deleted one gone, verify clean, no answer beyond
    its key's ACL, revoked keys refused), and the report has the documented shape, with every operation run."""
    local, _ = stack
    plot = tmp_path / "soak.png"
    result = bench_soak(
        duration=60, clients=3, interval=0.7, key_interval=4.0, check_timeout=30.0, stack=local, plot=plot
    )

    consistency = result["consistency"]
    assert consistency["ok"], json.dumps(consistency, indent=1)
    assert consistency["uploads_acknowledged"] > 10  # the ten seed documents and those of the run
    # An outcome is unknown when its last request got no answer (sent while Milvus restarted, timed out on a loaded
    # machine): it cannot be checked either way, but most outcomes must be, or the check above would prove little.
    unknown = consistency["outcome_unknown"]
    assert unknown <= max(3, consistency["uploads_acknowledged"] // 4), json.dumps(consistency, indent=1)
    assert consistency["expected_present"] > 0
    assert consistency["verify"]["clean"]
    assert consistency["verify"]["rows"] == consistency["verify"]["chunks"]
    assert consistency["search"]["checked"] >= consistency["expected_present"]
    answers = consistency["answers"]
    assert answers["responses_checked"] > 20
    assert answers["passages_checked"] > 0
    assert answers["violations"] == 0
    assert answers["keys_revoked"] >= 1
    assert answers["revoked_key_requests_refused"] >= 2

    assert result["benchmark"] == "soak"
    assert result["restart"]["component"] == "milvus"
    restart = result["restart"]
    assert 0 < restart["began_s"] <= restart["returned_s"] <= restart["recovered_s"] <= restart["ended_s"]
    assert list(result["phases"]) == ["before", "during", "after"]
    for phase in result["phases"].values():
        began, ended = phase["span_s"]
        assert began <= ended
        _shaped_as_operations(phase["operations"])
        assert all(isinstance(n, int) for kinds in phase["errors"].values() for n in kinds.values())
    _shaped_as_operations(result["operations"])
    assert set(result["operations"]) >= OPERATIONS, sorted(result["operations"])
    assert result["operations"]["search"]["requests"] > result["operations"]["search"]["errors"]
    assert result["plot"] == str(plot)
    assert plot.stat().st_size > 10_000


def test_the_cli_refuses_a_component_it_cannot_restart() -> None:
    """`cairn bench soak --restart disk` is refused before anything starts, naming the choices."""
    outcome = CliRunner().invoke(app, ["bench", "soak", "--restart", "disk", "--duration", "10"])
    assert outcome.exit_code == 2
    assert "milvus" in outcome.output
