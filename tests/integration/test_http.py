"""The HTTP service end to end with real keys: upload, jobs, search, ask, chat, download, ACLs, revocation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from cairn import Cairn
from cairn.http import PUBLIC_ROUTES, create_app

pytestmark = pytest.mark.integration


@pytest.fixture
def service(cairn: Cairn) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The app over a real Cairn, with an admin, an editor and a reader key of tenant acme."""
    tokens = {
        role: cairn.create_key(role=role, tenant="acme", groups=["hr"] if role != "reader" else ["sales"])[0]
        for role in ("admin", "editor", "reader")
    }
    with TestClient(create_app(cairn)) as client:
        yield client, tokens


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_for(client: TestClient, job_id: str, token: str) -> dict[str, Any]:
    for _ in range(300):
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=auth(token)).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError("the ingest job did not finish")


def upload(client: TestClient, token: str, docs: Path, **form: str) -> dict[str, Any]:
    files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in sorted(docs.iterdir())]
    response = client.post("/v1/collections/default/documents", headers=auth(token), files=files, data=form)
    assert response.status_code == 202, response.text
    return wait_for(client, response.json()["job_id"], token)


def test_every_route_but_health_and_metrics_needs_a_key(service: tuple[TestClient, dict[str, str]]) -> None:
    """Enumerates the app's routes: without a key, each one not on the public allowlist answers 401."""
    client, _ = service
    routes = [r for r in client.app.routes if isinstance(r, APIRoute)]  # type: ignore[attr-defined]
    assert len(routes) >= 15
    for route in routes:
        path = route.path.replace("{version}", "1")
        for name in ("name", "doc_id", "job_id", "key_id"):
            path = path.replace("{" + name + "}", "x")
        for method in route.methods:
            response = client.request(method, path)
            if route.path in PUBLIC_ROUTES:
                assert response.status_code < 400, (method, route.path)
            else:
                assert response.status_code == 401, (method, route.path, response.status_code)
                assert response.json()["error"]["code"] == "unauthenticated"


def test_upload_search_ask_chat_download_and_acl(service: tuple[TestClient, dict[str, str]], docs: Path) -> None:
    """An editor uploads (job + events), readers search, ask and chat; bytes download exactly; ACLs apply at once."""
    client, tokens = service
    job = upload(client, tokens["editor"], docs, allow="hr")
    assert job["state"] == "done", job
    assert job["report"]["ingested"] == 3
    events = client.get(f"/v1/jobs/{job['job_id']}/events", headers=auth(tokens["editor"])).text
    assert "event: progress" in events
    assert '"state": "done"' in events

    query = {"query": "How many days of parental leave?", "k": 3}
    hits = client.post("/v1/search", json=query, headers=auth(tokens["editor"])).json()["hits"]
    assert hits[0]["source"].endswith("leave.md")
    assert client.post("/v1/search", json=query, headers=auth(tokens["reader"])).json()["hits"] == []

    leave = hits[0]["doc_id"]
    acl = client.put(
        f"/v1/collections/default/documents/{leave}/acl", json={"allow": ["*"]}, headers=auth(tokens["editor"])
    )
    assert acl.status_code == 200, acl.text
    assert client.post("/v1/search", json=query, headers=auth(tokens["reader"])).json()["hits"][0]["doc_id"] == leave

    answer = client.post(
        "/v1/ask", json={"question": "How many days of parental leave?"}, headers=auth(tokens["reader"])
    )
    assert "120 days" in answer.json()["answer"]
    streamed = client.post(
        "/v1/ask", json={"question": "How many days of parental leave?", "stream": True}, headers=auth(tokens["reader"])
    ).text
    assert "event: answer" in streamed
    assert "event: citations" in streamed
    assert streamed.rstrip().endswith("data: {}")

    chat_body = {"model": "default", "messages": [{"role": "user", "content": "How many days of parental leave?"}]}
    chat = client.post("/v1/chat/completions", json=chat_body, headers=auth(tokens["reader"])).json()
    assert "120 days" in chat["choices"][0]["message"]["content"]
    stream = client.post(
        "/v1/chat/completions", json={**chat_body, "stream": True}, headers=auth(tokens["reader"])
    ).text
    assert stream.rstrip().endswith("data: [DONE]")
    pieces = [json.loads(line[6:]) for line in stream.splitlines() if line.startswith("data: {")]
    assert "120 days" in "".join(p["choices"][0]["delta"].get("content", "") for p in pieces)
    assert client.get("/v1/models", headers=auth(tokens["reader"])).json()["data"][0]["id"] == "default"

    content = client.get(
        f"/v1/collections/default/documents/{leave}/versions/1/content", headers=auth(tokens["reader"])
    )
    assert content.content == (docs / "leave.md").read_bytes()
    assert (
        client.delete(f"/v1/collections/default/documents/{leave}", headers=auth(tokens["reader"])).status_code == 403
    )
    assert (
        client.delete(f"/v1/collections/default/documents/{leave}", headers=auth(tokens["editor"])).status_code == 200
    )
    after = client.post("/v1/search", json=query, headers=auth(tokens["editor"])).json()["hits"]
    assert after
    assert all(hit["doc_id"] != leave for hit in after)


def test_keys_over_http_and_revocation_applies_to_the_next_request(service: tuple[TestClient, dict[str, str]]) -> None:
    """Admins create and revoke keys; a revoked key fails on its very next request; readers cannot manage keys."""
    client, tokens = service
    assert (
        client.post("/v1/keys", json={"role": "reader", "tenant": "acme"}, headers=auth(tokens["reader"])).status_code
        == 403
    )
    created = client.post("/v1/keys", json={"role": "reader", "tenant": "acme"}, headers=auth(tokens["admin"]))
    assert created.status_code == 201
    key = created.json()
    assert client.get("/v1/models", headers=auth(key["key"])).status_code == 200
    assert (
        client.post("/v1/keys", json={"role": "reader", "tenant": "globex"}, headers=auth(tokens["admin"])).status_code
        == 403
    )
    assert client.delete(f"/v1/keys/{key['key_id']}", headers=auth(tokens["admin"])).status_code == 200
    revoked = client.get("/v1/models", headers=auth(key["key"]))
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["error"]["message"]
    listed = client.get("/v1/keys", headers=auth(tokens["admin"])).text
    assert "digest" not in listed
    assert key["key"].rsplit("_", 1)[1] not in listed


def test_bodies_are_limited_even_when_chunked_and_uploads_leave_no_copy(
    service: tuple[TestClient, dict[str, str]], docs: Path, cairn: Cairn
) -> None:
    """A chunked body past the limit gets 413 without being read whole; after an upload job no plaintext copy
    of the upload stays on the server (the vault keeps the bytes)."""
    client, tokens = service

    def body() -> Iterator[bytes]:
        yield b'{"query": "'
        for _ in range(200):
            yield b"x" * 10_000
        yield b'"}'

    response = client.post(
        "/v1/search", content=body(), headers={**auth(tokens["reader"]), "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"

    assert upload(client, tokens["editor"], docs)["state"] == "done"
    leftovers = [p for p in (cairn.settings.home / "uploads").rglob("*") if p.is_file()]
    assert leftovers == []
    leave = next(d for d in cairn.documents() if d.source.endswith("leave.md"))
    assert cairn.document_bytes(leave.doc_id) == (docs / "leave.md").read_bytes()


def test_a_request_that_runs_out_of_time_gets_a_json_504(cairn: Cairn, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the request timeout the client gets 504 with the stable code 'timeout', not a hung connection."""
    from cairn.http import ServiceLimits

    token, _ = cairn.create_key(role="reader", tenant="acme")

    def slow_search(*args: object, **kwargs: object) -> object:
        time.sleep(1.5)
        from cairn.models import SearchResult

        return SearchResult(hits=[])

    monkeypatch.setattr(cairn, "search", slow_search)
    app = create_app(cairn, limits=ServiceLimits(request_timeout_s=0.3))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/search", json={"query": "anything"}, headers=auth(token))
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout"


def test_search_options_and_conversation_history_reach_cairn(
    cairn: Cairn, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/v1/search passes rerank/diversify and /v1/ask passes the conversation's earlier turns through to the same
    `Cairn` methods (so `cairn.Client` offers them too): the hits equal the local call's, and the follow-up is
    rewritten with exactly the turns sent."""
    from cairn.generate.conversation import Turn
    from cairn.http import create_app

    cairn.ingest([docs])
    history = [
        Turn(role="user", content="How much sick leave do we get?"),
        Turn(role="assistant", content="Sick leave is 15 days per year."),
    ]
    seen: list[list[Turn]] = []
    rewrite = cairn.generation.standalone

    def spy(question: str, turns: list[Turn]) -> str:
        seen.append(list(turns))
        return rewrite(question, turns)

    monkeypatch.setattr(cairn.generation, "standalone", spy)
    with TestClient(create_app(cairn, dev=True)) as client:
        searched = client.post("/v1/search", json={"query": "leave", "k": 2, "diversify": True})
        asked = client.post(
            "/v1/ask", json={"question": "And does it need a note?", "history": [vars(t) for t in history]}
        )
    assert searched.status_code == 200, searched.text
    local_hits = cairn.search("leave", k=2, diversify=True).hits
    assert [h["chunk_id"] for h in searched.json()["hits"]] == [h.chunk_id for h in local_hits]
    assert asked.status_code == 200, asked.text
    assert seen == [history]
    assert "note after three days" in asked.json()["answer"]
