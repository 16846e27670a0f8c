"""Grounded generation end to end: real Milvus Lite, the packaged embedder, and an OpenAI-compatible LLM
played by the local test double (tests/openai_double.py) — through `Cairn`, the CLI and the HTTP API."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.openai_double import OpenAIDouble, Reply
from typer.testing import CliRunner

from cairn import Cairn, Settings
from cairn.cli import app
from cairn.generate.extractive import NO_ANSWER
from cairn.http import create_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble(model="double-1") as server:
        yield server


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, embedder, double: OpenAIDouble) -> Iterator[Cairn]:  # type: ignore[no-untyped-def]
    """One ingested collection answered by the double (module-scoped: ingest once)."""
    folder = tmp_path_factory.mktemp("docs")
    (folder / "leave.md").write_text(
        "# Leave policy\n\n## Parental leave\n\nEmployees receive 120 days of paid parental leave.\n\n"
        "## Sick leave\n\nSick leave is 15 days per year and needs a doctor's note after three days.\n"
    )
    (folder / "batteries.txt").write_text(
        "Battery handling\n\nIf a lithium battery swells, move it to the fireproof bin outside.\n"
    )
    settings = Settings(
        home=tmp_path_factory.mktemp("home"), llm_base_url=double.url, llm_model=double.model, llm_max_retries=0
    )
    cairn = Cairn(settings)
    cairn._embedder = embedder
    cairn.ingest([folder])
    yield cairn
    cairn.close()


@pytest.fixture(autouse=True)
def _fresh_double(double: OpenAIDouble) -> None:
    double.script.clear()
    double.requests.clear()


def test_ask_streams_a_cited_answer_with_support_scores(world: Cairn, double: OpenAIDouble) -> None:
    """The answer arrives in pieces that make up the verified answer; it cites the passage the model used,
    which resolves to the document, and carries support and supported; the model got numbered passages."""
    double.script.append(Reply("Employees receive 120 days of paid parental leave [1]. The leave is paid [1]."))
    stream = world.ask_stream("How many days of paid parental leave do employees receive?")
    pieces = list(stream)
    answer = stream.result()
    assert pieces == ["Employees receive 120 days of paid parental leave [1]. ", "The leave is paid [1]."]
    assert answer.answer == "".join(pieces)
    assert answer.generator == "double-1"
    (citation,) = answer.citations
    assert citation.source.endswith("leave.md")
    assert citation.supported is True
    assert 0.7 < citation.support < 1.0  # the weaker of its two sentences
    (request,) = double.requests
    assert request["stream"] is True
    assert re.search(r'<passage id="1" source="[^"]+leave\.md', request["messages"][1]["content"])


def test_a_fabricated_citation_is_flagged_in_the_answer(world: Cairn, double: OpenAIDouble) -> None:
    """A model that changes the figure it cites and cites a passage that does not exist gets its citation
    marked unsupported and the invented mark removed, each with a warning."""
    double.script.append(Reply("Employees receive 400 days of paid parental leave [1]. Batteries explode [42]."))
    answer = world.ask("How many days of paid parental leave do employees receive?")
    assert answer.answer == "Employees receive 400 days of paid parental leave [1]. Batteries explode."
    (citation,) = answer.citations
    assert (citation.supported, citation.support <= 0.25) == (False, True)
    assert any("[42] named no passage" in w for w in answer.warnings)
    assert any("400 days" in w for w in answer.warnings)


def test_the_model_saying_the_sources_do_not_answer_gives_the_no_answer_message(
    world: Cairn, double: OpenAIDouble
) -> None:
    """When the model replies with the no-answer sentence, the answer is exactly that, with no citations."""
    double.script.append(Reply(f"{NO_ANSWER[:-1]}"))
    answer = world.ask("What is the boiling point of tungsten hexafluoride?")
    assert (answer.answer, answer.citations) == (NO_ANSWER, [])
    assert NO_ANSWER in double.requests[0]["messages"][0]["content"]  # the rules told the model what to say


def test_without_any_visible_passage_the_llm_is_not_asked(world: Cairn, double: OpenAIDouble) -> None:
    """A key that sees no document gets the no-answer message, and nothing is sent to the model."""
    principal = world.keys.authenticate(world.create_key(role="reader", tenant="nobody")[0])
    answer = world.ask("How many days of paid parental leave?", principal=principal)
    assert (answer.answer, answer.citations) == (NO_ANSWER, [])
    assert double.requests == []


def test_http_ask_and_chat_stream_cited_answers_and_chat_uses_the_history(world: Cairn, double: OpenAIDouble) -> None:
    """/v1/ask streams answer events then citations with support; /v1/chat/completions streams chunks, and a
    follow-up is rewritten with the LLM from the conversation before retrieval."""
    with TestClient(create_app(world, dev=True)) as client:
        events = client.post(
            "/v1/ask", json={"question": "How many days of paid parental leave do employees receive?", "stream": True}
        ).text
        parsed = [(e.split("\n")[0][7:], json.loads(e.split("\n")[1][6:])) for e in events.strip().split("\n\n")]
        names = [name for name, _ in parsed]
        assert names[0] == "answer"
        assert names[-3:] == ["citations", "result", "done"]
        text = "".join(data["text"] for name, data in parsed if name == "answer")
        assert "parental leave [1]." in text
        citations = next(data for name, data in parsed if name == "citations")
        assert citations[0]["supported"] is True
        assert 0.9 < citations[0]["support"] <= 1.0

        double.requests.clear()
        messages = [
            {"role": "user", "content": "How many days of sick leave do employees get?"},
            {"role": "assistant", "content": "Sick leave is 15 days per year [1]."},
            {"role": "user", "content": "Does it need a doctor's note?"},
        ]
        chunks = client.post("/v1/chat/completions", json={"model": "default", "messages": messages, "stream": True})
        datas = [json.loads(line[6:]) for line in chunks.text.splitlines() if line.startswith("data: {")]
        assert chunks.text.rstrip().endswith("data: [DONE]")
        content = "".join(d["choices"][0]["delta"].get("content", "") for d in datas)
        assert "doctor's note after three days [1]." in content
        assert datas[-1]["citations"][0]["supported"] is True
    rewrite, answer = double.requests
    assert "standalone search query" in rewrite["messages"][0]["content"]
    assert "How many days of sick leave" in rewrite["messages"][1]["content"]
    assert (
        "Question (in full): Does it need a doctor's note? (How many days of sick leave"
        in (answer["messages"][1]["content"])
    )


def test_cli_ask_streams_against_an_openai_compatible_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, double: OpenAIDouble, docs: Path
) -> None:
    """`cairn ask` with CAIRN_LLM_* set prints the model's cited answer and each citation's support."""
    monkeypatch.setenv("CAIRN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CAIRN_LLM_BASE_URL", double.url)
    monkeypatch.setenv("CAIRN_LLM_MODEL", double.model)
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(docs), "--json"], catch_exceptions=False).exit_code == 0
    result = runner.invoke(app, ["ask", "Where does a swollen lithium battery go?"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "move it to the fireproof bin outside [1]." in result.stdout
    printed = result.stdout.replace("\n", "")  # Rich wraps long source paths (a wrap may eat the space after one)
    assert re.search(r"\[1\] \S*batteries\.txt.*support [01]\.\d\d supported", printed)
    as_json = json.loads(runner.invoke(app, ["ask", "Where does a swollen lithium battery go?", "--json"]).stdout)
    assert as_json["generator"] == double.model
    assert as_json["citations"][0]["supported"] is True
