"""`cairn eval` end to end on a tiny slice of a committed evaluation set (real model, Milvus Lite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cairn.cli import app
from cairn.eval.dataset import half_of, load_dataset

pytestmark = pytest.mark.integration

PYDOC = Path(__file__).parent.parent / "fixtures" / "eval" / "pydoc"
METRICS = {"ndcg@10", "recall@10", "recall@100", "mrr@10", "seconds", "ms_per_query"}


def test_eval_json_on_a_tiny_subset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """10 queries over 30 documents: every mode is reported with sane metrics, and hybrid finds most answers."""
    monkeypatch.setenv("CAIRN_HOME", str(tmp_path / "untouched"))
    result = CliRunner().invoke(
        app,
        ["eval", str(PYDOC), "--queries", "10", "--docs", "30", "--modes", "keyword,dense,hybrid,rerank", "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["dataset"] == "pydoc"
    assert report["queries"] == 10
    assert report["corpus_documents"] == 30
    assert report["ingest"]["documents"] == 30
    assert report["ingest"]["failed"] == 0
    assert report["ingest"]["chunks"] >= 30
    # rerank is scored when a cross-encoder is installed, else reported unavailable with the reason.
    assert list(report["modes"])[:3] == ["keyword", "dense", "hybrid"]
    assert ("rerank" in report["modes"]) != ("rerank" in report["unavailable"])
    assert all(why.strip() for why in report["unavailable"].values())
    for metrics in report["modes"].values():
        assert set(metrics) == METRICS
        assert all(0.0 <= metrics[name] <= 1.0 for name in ("ndcg@10", "recall@10", "recall@100", "mrr@10"))
        assert metrics["recall@10"] <= metrics["recall@100"]
        assert metrics["mrr@10"] <= metrics["recall@10"]
    assert report["modes"]["hybrid"]["recall@10"] > 0.5
    assert not (tmp_path / "untouched").exists(), "the eval must use a scratch home, not CAIRN_HOME"


def test_unknown_mode_is_refused_with_the_choices(tmp_path: Path) -> None:
    """A mistyped mode exits 2 and names the valid ones."""
    result = CliRunner().invoke(app, ["eval", str(PYDOC), "--modes", "hybird", "--json"])
    assert result.exit_code == 2
    message = json.loads(result.stdout)["error"]
    assert "hybird" in message
    assert all(mode in message for mode in ("keyword", "dense", "hybrid", "rerank"))


QUESTIONS = Path(__file__).parent.parent / "fixtures" / "eval" / "faqquestions"


def test_eval_scores_one_half_over_the_whole_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--half held-out` scores only the held-out queries of the slice (their ids hash to it), over the
    slice's whole corpus, and says which half it scored."""
    monkeypatch.setenv("CAIRN_HOME", str(tmp_path / "untouched"))
    result = CliRunner().invoke(
        app,
        ["eval", str(QUESTIONS), "--queries", "20", "--docs", "40", "--half", "held-out", "--modes", "hybrid",
         "--json"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    first = sorted(load_dataset(QUESTIONS).queries)[:20]
    assert report["half"] == "held-out"
    assert report["queries"] == sum(half_of(q) == "held-out" for q in first)
    assert 0 < report["queries"] < 20
    assert report["corpus_documents"] == report["ingest"]["documents"] == 40
    assert report["modes"]["hybrid"]["recall@10"] > 0.5


def test_unknown_half_is_refused_with_the_choices() -> None:
    """A half other than tune or held-out exits 2 and names both."""
    result = CliRunner().invoke(app, ["eval", str(QUESTIONS), "--half", "test", "--json"])
    assert result.exit_code == 2
    message = json.loads(result.stdout)["error"]
    assert "tune" in message
    assert "held-out" in message


GITFAQ = Path(__file__).parent.parent / "fixtures" / "eval" / "gitfaq"
ANSWER_RATES = {"gold_quoted", "question_echoed", "cut_sentences", "no_answer", "citations_supported"}


def test_eval_answers_json_on_a_few_faq_questions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cairn eval --answers` asks real FAQ questions through Cairn.ask: the answers quote the FAQ's own
    answers, never the question, with whole sentences and supported citations."""
    monkeypatch.setenv("CAIRN_HOME", str(tmp_path / "untouched"))
    result = CliRunner().invoke(
        app, ["eval", str(GITFAQ), "--answers", "--queries", "6", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    assert (report["dataset"], report["questions"]) == ("gitfaq", 6)
    rates = report["answers"]
    assert set(rates) == ANSWER_RATES | {"ms_per_question"}
    assert rates["gold_quoted"] >= 0.8
    assert rates["question_echoed"] == 0.0
    assert rates["cut_sentences"] == 0.0
    assert rates["citations_supported"] == 1.0
    assert not (tmp_path / "untouched").exists()


def test_eval_answers_needs_gold_answers(tmp_path: Path) -> None:
    """A retrieval-only set (no answers.jsonl) is refused with exit 2 and a message naming the file."""
    result = CliRunner().invoke(app, ["eval", str(PYDOC), "--answers", "--json"])
    assert result.exit_code == 2
    assert "answers.jsonl" in json.loads(result.stdout)["error"]
