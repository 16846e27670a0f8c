"""The `cairn` command line, driven in-process, against a real CAIRN_HOME on Milvus Lite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cairn.cli import app

pytestmark = pytest.mark.integration


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CAIRN_HOME", str(tmp_path / "home"))
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return result.exit_code, result.stdout

    return invoke


def test_ingest_search_ask_json_shapes(run, docs: Path) -> None:  # type: ignore[no-untyped-def]
    """ingest, search and ask print the documented JSON fields; a second ingest is all unchanged."""
    code, out = run("ingest", str(docs), "--json")
    assert code == 0
    report = json.loads(out)
    assert set(report) == {
        "collection",
        "files",
        "ingested",
        "unchanged",
        "removed",
        "chunks",
        "tokens",
        "formats",
        "skipped",
        "failed",
        "warnings",
        "seconds",
    }
    assert sum(report["formats"].values()) == report["ingested"]
    assert {"hash", "parse", "chunk", "embed", "store", "index", "publish", "total"} <= set(report["seconds"])
    assert (report["collection"], report["ingested"], report["failed"]) == ("default", 3, [])
    code, out = run("ingest", str(docs), "--json")
    assert json.loads(out)["unchanged"] == 3

    code, out = run("search", "swollen lithium battery", "-k", "2", "--mode", "hybrid", "--json")
    hits = json.loads(out)["hits"]
    assert code == 0
    assert len(hits) == 2
    assert {"doc_id", "source", "chunk_id", "score", "text", "location"} <= set(hits[0])
    assert hits[0]["source"] == "docs/batteries.txt"
    assert not Path(hits[0]["source"]).is_absolute()  # an identity, not this machine's path

    code, out = run("ask", "Where do swollen batteries go?", "--json")
    answer = json.loads(out)
    assert code == 0
    assert "fireproof bin" in answer["answer"]
    assert {"source", "location", "text"} <= set(answer["citations"][0])


def test_failed_files_set_exit_code_3_and_are_listed(run, docs: Path) -> None:  # type: ignore[no-untyped-def]
    """A partly failed ingest exits 3 and names each failed file with its reason."""
    (docs / "empty.md").write_text("")
    code, out = run("ingest", str(docs), "--json")
    assert code == 3
    (failure,) = json.loads(out)["failed"]
    assert failure["path"].endswith("empty.md")
    assert "empty" in failure["error"]


def test_collections_and_docs_commands(run, docs: Path) -> None:  # type: ignore[no-untyped-def]
    """collections list/info/drop and docs list/rm work and report in JSON."""
    run("ingest", str(docs), "-c", "hr", "--json")
    code, out = run("collections", "list", "--json")
    assert [c["name"] for c in json.loads(out)["collections"]] == ["hr"]
    code, out = run("collections", "info", "hr", "--json")
    assert json.loads(out)["documents"] == 3
    code, out = run("docs", "list", "-c", "hr", "--json")
    assert len(json.loads(out)["documents"]) == 3
    code, out = run("docs", "rm", str(docs / "api.html"), "-c", "hr", "--json")
    assert code == 0
    assert json.loads(out)["removed"][0]["source"] == "docs/api.html"
    code, out = run("docs", "rm", "nope", "-c", "hr", "--json")
    assert code == 4
    assert "no document 'nope'" in json.loads(out)["error"]
    code, out = run("collections", "drop", "hr", "--json")
    assert code == 0
    code, out = run("collections", "info", "hr", "--json")
    assert code == 4
    assert "no collection 'hr'" in json.loads(out)["error"]


def test_errors_are_one_clear_line(run) -> None:  # type: ignore[no-untyped-def]
    """Searching a collection that does not exist says so and how to fix it, with no traceback."""
    code, out = run("search", "anything", "-c", "missing")
    assert code == 4
    assert "Traceback" not in out


def test_demo_prints_cited_answers(run) -> None:  # type: ignore[no-untyped-def]
    """`cairn demo` ingests the bundled corpus and answers its five questions with citations, in whole
    sentences that answer: the FAQ's answer rather than its question line or a wrapped line's fragment."""
    code, out = run("demo", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["ingest"]["failed"] == []
    assert result["ingest"]["ingested"] >= 8
    answers = {a["question"]: a for a in result["answers"]}
    assert len(answers) == 5
    for answer in answers.values():
        assert answer["citations"], answer
        assert all(c["supported"] for c in answer["citations"]), answer
        assert "?" not in answer["answer"], answer
    leave_days = next(a for q, a in answers.items() if "annual leave and sick leave" in q)["answer"]
    assert (
        "Full-time employees receive 27 days of paid annual leave per year, in addition to public holidays."
        in leave_days
    )
    assert (
        "Employees receive up to 15 days of paid sick leave per rolling twelve-month period at full pay." in leave_days
    )
    sick = next(a for q, a in answers.items() if "sick on holiday" in q)["answer"]
    assert sick.startswith(
        "If you are ill for two or more days of a holiday and can provide a doctor's note, those days are "
        "recorded as sick leave and your annual leave is credited back. [1]"
    )
    leave = next(a for q, a in answers.items() if "parental" in q)
    assert "120 days" in leave["answer"]
    regions = next(a for q, a in answers.items() if "regions" in q)
    assert "Frankfurt" in regions["answer"]
    assert regions["citations"][0]["source"].endswith("atlas-api.md")


def test_docs_versions_get_and_verify(run, docs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """docs versions lists versions, docs get writes a version's exact bytes, verify exits 0 when clean."""
    original = (docs / "leave.md").read_bytes()
    run("ingest", str(docs), "--json")
    (docs / "leave.md").write_bytes(original + b"\nChanged.\n")
    run("ingest", str(docs), "--json")

    code, out = run("docs", "versions", str(docs / "leave.md"), "--json")
    assert code == 0
    assert [v["version"] for v in json.loads(out)["versions"]] == [1, 2]
    code, _ = run("docs", "get", str(docs / "leave.md"), "--version", "1", "--out", str(tmp_path / "v1"))
    assert code == 0
    assert (tmp_path / "v1").read_bytes() == original
    code, out = run("docs", "get", str(docs / "leave.md"), "--version", "7")
    assert code == 4
    code, out = run("verify", "--json")
    assert code == 0
    assert json.loads(out)["clean"] is True
    code, out = run("rebuild", "--json")
    assert code == 0
    assert json.loads(out)["rows"] > 0


def test_purge_and_retention_commands(run, docs: Path) -> None:  # type: ignore[no-untyped-def]
    """docs rm --purge deletes a document's versions; retention on a local vault is refused with exit 1."""
    run("ingest", str(docs), "--json")
    code, out = run("docs", "rm", str(docs / "leave.md"), "--purge", "--json")
    assert code == 0
    assert [Path(d["source"]).name for d in json.loads(out)["removed"]] == ["leave.md"]
    code, _ = run("docs", "versions", str(docs / "leave.md"))
    assert code == 4
    code, out = run("collections", "retention", "default", "--mode", "governance", "--days", "3", "--json")
    assert code == 1
    assert "object lock" in json.loads(out)["error"]
    code, out = run("collections", "retention", "default", "--json")
    assert code == 2


def test_keys_and_access_commands(run, docs: Path) -> None:  # type: ignore[no-untyped-def]
    """keys create prints the key once (JSON), list never shows secrets, revoke works; ingest --tenant/--allow
    and docs acl set who may see a document."""
    code, out = run("keys", "create", "--role", "reader", "--tenant", "acme", "--groups", "hr,ops", "--json")
    assert code == 0
    created = json.loads(out)
    assert created["key"].startswith(f"cairn_{created['key_id']}_")
    code, out = run("keys", "list", "--json")
    assert code == 0
    listed = json.loads(out)["keys"]
    assert [(k["key_id"], k["groups"]) for k in listed] == [(created["key_id"], ["hr", "ops"])]
    assert created["key"].rsplit("_", 1)[1] not in out
    assert "digest" not in out
    code, _ = run("keys", "create", "--role", "root", "--tenant", "acme")
    assert code == 2
    code, out = run("keys", "revoke", created["key_id"], "--json")
    assert code == 0

    code, _ = run("ingest", str(docs), "--tenant", "acme", "--allow", "hr,user:ceo", "--json")
    assert code == 0
    code, out = run("docs", "list", "--json")
    leave = next(d for d in json.loads(out)["documents"] if d["source"].endswith("leave.md"))
    assert (leave["tenant"], leave["allowed"]) == ("acme", ["group:hr", "user:ceo"])
    code, out = run("docs", "acl", str(docs / "leave.md"), "--allow", "*", "--json")
    assert code == 0
    assert json.loads(out)["documents"][0]["allowed"] == ["*"]
    code, _ = run("docs", "acl", str(docs / "leave.md"), "--allow", "bad:kind", "--json")
    assert code == 2


def test_collections_info_names_the_engine_and_its_active_features(run, docs: Path) -> None:  # type: ignore[no-untyped-def]
    """On Milvus Lite 2.5: BM25 and hybrid are active, and a new collection has the heading index; aliases and
    partition keys are server features."""
    assert run("ingest", str(docs), "--json")[0] == 0
    code, out = run("collections", "info", "default", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["engine"] == "milvus-lite"
    assert info["engine_version"] == "2.5.1"
    assert set(info["features"]) == {"bm25", "hybrid", "heading_index"}
    code, out = run("collections", "info", "default")
    assert code == 0
    assert "active features  bm25, hybrid, heading_index" in out
    assert "no BM25" not in out
    assert "made before the heading index" not in out
