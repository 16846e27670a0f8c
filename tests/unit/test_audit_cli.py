"""`cairn audit verify|show`, driven in-process against a CAIRN_HOME with a local vault."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cairn.audit import AuditLog
from cairn.cli.audit import EXIT_TAMPERED, app
from cairn.core import Cairn

Run = Callable[..., tuple[int, str]]


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AuditLog:
    monkeypatch.setenv("CAIRN_HOME", str(tmp_path / "home"))
    audit = AuditLog(Cairn().vault.store)
    for i in range(5):
        audit.append(actor="cli:alice", action="search", collection="hr", documents=[f"doc-{i}"])
    return audit


@pytest.fixture
def run() -> Run:
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return result.exit_code, result.output

    return invoke


def test_verify_exits_zero_and_prints_the_head_when_intact(log: AuditLog, run: Run) -> None:
    """An intact log: exit 0, 'chain intact', and the SEQ:HASH head to keep."""
    code, out = run("verify")
    assert code == 0
    assert "chain intact" in out
    assert str(log.head()) in out


def test_verify_exits_six_and_names_each_problem_when_tampered(log: AuditLog, run: Run) -> None:
    """A deleted record: exit 6 and the problem, naming its seq, in the output (human and JSON)."""
    log.store.delete("audit/000000000003.json")
    code, out = run("verify")
    assert code == EXIT_TAMPERED == 6
    assert "seq 3: missing" in out
    code, out = run("verify", "--json")
    assert code == 6
    report = json.loads(out)
    assert report["ok"] is False
    assert report["problems"][0].startswith("seq 3: missing")


def test_verify_against_a_kept_head_catches_truncation(log: AuditLog, run: Run) -> None:
    """--head SEQ:HASH noted earlier turns a silently deleted tail into exit 6."""
    kept = str(log.head())
    log.store.delete("audit/000000000005.json")
    assert run("verify")[0] == 0
    code, out = run("verify", "--head", kept, "--json")
    assert code == 6
    assert "truncation" in json.loads(out)["problems"][0]


def test_a_malformed_head_is_a_usage_error(log: AuditLog, run: Run) -> None:
    """--head that is not SEQ:HASH exits 2 with a message saying the expected form."""
    code, out = run("verify", "--head", "five")
    assert code == 2
    assert "SEQ:HASH" in out


def test_show_prints_the_newest_records_oldest_first(log: AuditLog, run: Run) -> None:
    """show --last 2 --json returns records 4 and 5; the table form lists the action of each record."""
    code, out = run("show", "--last", "2", "--json")
    assert code == 0
    assert [r["seq"] for r in json.loads(out)["records"]] == [4, 5]
    code, out = run("show")
    assert code == 0
    assert out.count("search") == 5
