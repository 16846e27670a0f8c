"""The MCP server driven by the official SDK's own client, on both transports: `cairn mcp` over stdio (a
subprocess, the key in its environment) and ``/mcp`` of the service in uvicorn on loopback (streamable HTTP,
the key as a bearer token).

One small library in collection ``kb`` of tenant acme: a leave policy and a battery note everyone may see,
and a Q3 forecast only group finance may see. ``reader`` is an acme reader outside finance, ``analyst`` one
inside it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError as McpError
from mcp.types import CallToolResult, TextContent
from tests.uvicorn_thread import served

from cairn import Cairn, Settings
from cairn.http import PUBLIC_ROUTES, create_app
from cairn.mcp.reading import VersionText
from cairn.models import Chunk, DocumentInfo, Location

pytestmark = pytest.mark.integration

T = TypeVar("T")
TOOLS = {"search", "ask", "list_collections", "read_passage", "read_document"}
LEAVE_QUESTION = "How many days of paid parental leave do employees receive?"


@dataclass(frozen=True)
class Library:
    """A CAIRN_HOME holding collection kb, and the keys and ids the tests use."""

    home: Path
    reader: str
    reader_id: str
    analyst: str
    forecast_id: str


def build_library(cairn: Cairn, folder: Path) -> Library:
    """Ingest the public and the finance documents into kb; make the reader and the analyst keys."""
    public, finance = folder / "handbook", folder / "finance"
    public.mkdir()
    finance.mkdir()
    (public / "leave.md").write_text(
        "# Leave policy\n\n## Parental leave\n\nEmployees receive 120 days of paid parental leave.\n\n"
        "## Sick leave\n\nSick leave is 15 days per year and needs a note after three days.\n"
    )
    (public / "batteries.txt").write_text(
        "Battery handling\n\nIf a lithium battery swells, move it to the fireproof bin outside.\n"
    )
    (finance / "q3-forecast.md").write_text(
        "# Q3 forecast\n\nThe confidential Q3 revenue forecast is 42 million euros, driven by the Atlas renewal.\n"
    )
    cairn.ingest(public, collection="kb", tenant="acme", allow=["*"])
    cairn.ingest(finance, collection="kb", tenant="acme", allow=["finance"])
    reader, reader_key = cairn.create_key(role="reader", tenant="acme")
    analyst, _ = cairn.create_key(role="reader", tenant="acme", groups=["finance"])
    forecast = next(d.doc_id for d in cairn.documents(collection="kb") if d.source.endswith("q3-forecast.md"))
    return Library(cairn.settings.home, reader, reader_key.key_id, analyst, forecast)


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def run(scenario: Callable[[], Awaitable[T]], timeout: float = 300) -> T:
    """Run an async scenario to its end, failing (not hanging) after *timeout* seconds.

    It runs in a thread of its own: Playwright's sync API (the e2e tests, earlier in the same session) leaves
    an event loop marked as running in the main thread, where `anyio.run` would refuse to start another.
    """

    async def bounded() -> T:
        with anyio.fail_after(timeout):
            return await scenario()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcp-client") as pool:
        return pool.submit(anyio.run, bounded).result()


# -- streamable HTTP --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    cairn: Cairn
    url: str
    library: Library


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Service]:
    """The library in a real Cairn, served by the app (no embedded worker) in uvicorn."""
    cairn = Cairn(Settings(home=tmp_path_factory.mktemp("mcp-http") / "home"))
    cairn._embedder = embedder
    library = build_library(cairn, tmp_path_factory.mktemp("corpus"))
    with served(create_app(cairn, worker=False)) as url:
        yield Service(cairn, url, library)
    cairn.close()


@asynccontextmanager
async def http_session(service: Service, token: str) -> AsyncIterator[ClientSession]:
    """An initialized SDK client session to ``/mcp``, sending *token* as the bearer key."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120)) as client,
        streamable_http_client(f"{service.url}/mcp", http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def test_http_tools_are_described_for_the_key_that_lists_them(service: Service) -> None:
    """Over HTTP, every tool is listed; descriptions name collection kb and the documents the key may see:
    the reader's two (not the forecast), the analyst's three."""

    async def descriptions(token: str) -> dict[str, str]:
        async with http_session(service, token) as session:
            listed = await session.list_tools()
            return {tool.name: tool.description or "" for tool in listed.tools}

    reader = run(lambda: descriptions(service.library.reader))
    analyst = run(lambda: descriptions(service.library.analyst))
    assert set(reader) == TOOLS
    for name in ("search", "ask", "list_collections"):
        assert "'kb': 2 documents (batteries.txt, leave.md)" in reader[name]
        assert "q3-forecast.md" not in reader[name]
        assert "'kb': 3 documents" in analyst[name]
        assert "q3-forecast.md" in analyst[name]


def test_http_search_ask_and_read_return_cited_passages(service: Service) -> None:
    """search finds the leave policy with its location and ids; ask answers "120 days" citing it with support;
    read_passage returns the cited passage and read_document the version's text."""

    async def scenario() -> tuple[CallToolResult, ...]:
        async with http_session(service, service.library.reader) as session:
            found = await session.call_tool("search", {"query": "parental leave", "collection": "kb", "k": 3})
            asked = await session.call_tool("ask", {"question": LEAVE_QUESTION, "collection": "kb"})
            cited = asked.structured_content["citations"][0]
            ids = {key: cited[key] for key in ("doc_id", "version", "chunk_id")}
            passage = await session.call_tool("read_passage", {**ids, "collection": "kb"})
            document = await session.call_tool("read_document", {"doc_id": cited["doc_id"], "collection": "kb"})
            return found, asked, passage, document

    found, asked, passage, document = run(scenario)
    assert not found.is_error, text_of(found)
    top = found.structured_content["hits"][0]
    assert top["source"].endswith("leave.md")
    assert top["location"]["label"].startswith("Leave policy › Parental leave")
    assert f"chunk_id={top['chunk_id']}" in text_of(found)
    assert "<passage>\n" in text_of(found)
    assert "Employees receive 120 days" in text_of(found)

    assert not asked.is_error, text_of(asked)
    assert "120 days" in asked.structured_content["answer"]
    citation = asked.structured_content["citations"][0]
    assert citation["source"].endswith("leave.md")
    assert citation["support"] > 0.5
    assert citation["supported"] is True
    assert f"{citation['source']} — Leave policy › Parental leave" in text_of(asked)
    assert "(support " in text_of(asked)

    assert not passage.is_error, text_of(passage)
    assert "120 days of paid parental leave" in passage.structured_content["text"]
    assert not document.is_error, text_of(document)
    assert "Parental leave\n\nEmployees receive 120 days of paid parental leave." in document.structured_content["text"]
    assert "15 days per year" in document.structured_content["text"]


def test_http_a_reader_outside_finance_never_sees_the_forecast(service: Service) -> None:
    """The reader's search and ask never return the finance-only forecast, and reading it by id is "not found"
    (as for a document that does not exist); the analyst's search finds it."""
    forecast = service.library.forecast_id

    async def as_key(token: str) -> tuple[CallToolResult, ...]:
        async with http_session(service, token) as session:
            query = {"query": "confidential Q3 revenue forecast", "collection": "kb", "k": 5}
            found = await session.call_tool("search", query)
            asked = await session.call_tool("ask", {"question": "What is the Q3 revenue forecast?", "collection": "kb"})
            read = await session.call_tool("read_document", {"doc_id": forecast, "collection": "kb"})
            return found, asked, read

    found, asked, read = run(lambda: as_key(service.library.reader))
    assert all(hit["doc_id"] != forecast for hit in found.structured_content["hits"])
    assert "42 million" not in text_of(found)
    assert all(c["doc_id"] != forecast for c in asked.structured_content["citations"])
    assert "42 million" not in text_of(asked)
    assert read.is_error
    assert text_of(read) == f"no document {forecast!r} in collection 'kb'; `cairn docs list` shows ids and sources"

    found, _, read = run(lambda: as_key(service.library.analyst))
    assert found.structured_content["hits"][0]["doc_id"] == forecast
    assert not read.is_error
    assert "42 million euros" in read.structured_content["text"]


def test_http_mcp_needs_a_valid_key_on_every_request(service: Service) -> None:
    """/mcp is not a public route: a POST without a key, or with a malformed or unknown one, is answered 401
    with cairn's error body and a Bearer challenge; GET and DELETE (no stream, no session) are 405."""
    assert "/mcp" not in PUBLIC_ROUTES
    tools_list = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    with httpx.Client(base_url=service.url, timeout=30) as client:
        for header, message in (
            ({}, "no API key: send `Authorization: Bearer cairn_...`"),
            ({"Authorization": "Bearer nonsense"}, "malformed API key"),
            ({"Authorization": f"Bearer cairn_0123456789abcdef_{'x' * 43}"}, "unknown API key"),
        ):
            response = client.post("/mcp", json=tools_list, headers=header)
            assert response.status_code == 401, (header, response.text)
            assert response.json() == {"error": {"code": "unauthenticated", "message": message}}
            assert response.headers["www-authenticate"] == "Bearer"
        valid = {"Authorization": f"Bearer {service.library.reader}"}
        assert client.post("/mcp", json=tools_list, headers=valid).json()["result"]["tools"]
        for method in ("GET", "DELETE"):
            assert client.request(method, "/mcp", headers=valid).status_code == 405


def test_http_a_revoked_key_is_refused_on_its_next_call(service: Service) -> None:
    """A key that works, revoked while its client is connected, fails on the very next call: the SDK client
    raises, and the same request made by hand is answered 401 "this API key was revoked"."""
    token, record = service.cairn.create_key(role="reader", tenant="acme")

    async def scenario() -> tuple[CallToolResult, BaseException | None]:
        async with http_session(service, token) as session:
            before = await session.call_tool("list_collections", {})
            service.cairn.revoke_key(record.key_id)
            try:
                await session.call_tool("list_collections", {})
            except McpError as exc:
                return before, exc
            return before, None

    before, refused = run(scenario)
    assert not before.is_error
    assert before.structured_content["collections"][0]["name"] == "kb"
    assert refused is not None, "the revoked key's call succeeded"
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "list_collections", "arguments": {}}}
    response = httpx.post(f"{service.url}/mcp", json=call, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 401
    assert response.json()["error"] == {"code": "unauthenticated", "message": "this API key was revoked"}


def test_http_dev_mode_serves_the_local_administrator_on_loopback_names_only(service: Service) -> None:
    """With --dev a request without a key acts as the local administrator (it sees the forecast too), as on the
    /v1 routes; a Host header that is not a loopback name (DNS rebinding) is refused before any tool runs."""
    tools_list = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    with served(create_app(service.cairn, dev=True, worker=False)) as url:

        async def scenario() -> CallToolResult:
            async with (
                httpx2.AsyncClient(timeout=httpx2.Timeout(120)) as client,
                streamable_http_client(f"{url}/mcp", http_client=client) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                return await session.call_tool("list_collections", {})

        listed = run(scenario)
        rebound = httpx.post(f"{url}/mcp", json=tools_list, headers={"Host": "attacker.example"}, timeout=30)
    (kb,) = listed.structured_content["collections"]
    assert (kb["name"], kb["documents"], sorted(kb["examples"])) == (
        "kb",
        3,
        ["batteries.txt", "leave.md", "q3-forecast.md"],
    )
    assert rebound.status_code == 421, rebound.text


def test_http_bad_arguments_are_tool_errors_with_clear_messages(service: Service) -> None:
    """k=0, an unknown collection, a malformed filter, an unknown argument and an unknown tool each come back
    as a tool error (isError) with cairn's message, never a traceback."""
    calls: dict[str, tuple[str, dict[str, Any]]] = {
        "k": ("search", {"query": "leave", "collection": "kb", "k": 0}),
        "collection": ("search", {"query": "leave", "collection": "nope"}),
        "filter": ("search", {"query": "leave", "collection": "kb", "filter": 'mime = "text/plain" and'}),
        "field": ("search", {"query": "leave", "collection": "kb", "filter": 'tenant = "globex"'}),
        "extra": ("ask", {"question": "leave?", "collection": "kb", "temperature": 2}),
        "tool": ("drop_collection", {"collection": "kb"}),
    }

    async def scenario() -> dict[str, CallToolResult]:
        async with http_session(service, service.library.reader) as session:
            return {case: await session.call_tool(name, args) for case, (name, args) in calls.items()}

    results = run(scenario)
    assert all(result.is_error for result in results.values())
    messages = {case: text_of(result) for case, result in results.items()}
    assert messages["k"] == "invalid arguments for search: k: Input should be greater than or equal to 1 (got '0')"
    assert messages["collection"].startswith("no collection 'nope'")
    assert messages["filter"] == (
        "filter syntax error at character 24: expected a field name, 'not' or '(', found the end of the filter"
    )
    assert "'tenant' cannot be filtered on: it is set by the server" in messages["field"]
    assert messages["extra"] == "invalid arguments for ask: temperature: Extra inputs are not permitted (got '2')"
    assert messages["tool"].startswith("unknown tool 'drop_collection'")
    assert not any("Traceback" in m for m in messages.values())


# -- stdio ------------------------------------------------------------------------------------------


def cairn_mcp() -> list[str]:
    """The command line of `cairn mcp` for this interpreter (and the worktree's code, through PYTHONPATH)."""
    return [sys.executable, "-c", "from cairn.cli import main; main()", "mcp"]


def mcp_environment(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without its CAIRN_* settings, for CAIRN_HOME *home*, with *extra*."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    return {**kept, "CAIRN_HOME": str(home), "CAIRN_CONFIG": str(home / "no-cairn.toml"), **extra}


@pytest.fixture
def stdio_library(tmp_path: Path, embedder: Any) -> Library:
    """The library in a CAIRN_HOME that no process holds open, for `cairn mcp` to open.

    Milvus Lite admits one process per database and keeps its server until the process that started it
    exits, so after closing the Cairn this stops that server too.
    """
    from milvus_lite.server_manager import server_manager_instance

    with Cairn(Settings(home=tmp_path / "home")) as cairn:
        cairn._embedder = embedder
        library = build_library(cairn, tmp_path)
    server_manager_instance.release_server(cairn.settings.engine_uri)
    return library


@pytest.mark.slow
def test_stdio_serves_cited_results_as_the_key_and_refuses_it_once_revoked(
    stdio_library: Library, tmp_path: Path
) -> None:
    """`cairn mcp` as a subprocess, CAIRN_API_KEY the reader's: the tools are described for the reader; search
    and ask return cited passages; the forecast stays hidden from search and read_document; bad arguments
    are tool errors; and after the key is revoked (by another process) the next call is refused."""
    library = stdio_library
    command = cairn_mcp()
    params = StdioServerParameters(
        command=command[0], args=command[1:], env=mcp_environment(library.home, CAIRN_API_KEY=library.reader)
    )

    async def scenario() -> dict[str, Any]:
        with (tmp_path / "stderr.log").open("w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                seen: dict[str, Any] = {"tools": (await session.list_tools()).tools}
                seen["search"] = await session.call_tool(
                    "search", {"query": "swollen lithium battery", "k": 2, "collection": "kb"}
                )
                seen["ask"] = await session.call_tool("ask", {"question": LEAVE_QUESTION, "collection": "kb"})
                seen["hidden"] = await session.call_tool(
                    "search", {"query": "confidential Q3 revenue forecast", "collection": "kb"}
                )
                seen["read"] = await session.call_tool(
                    "read_document", {"doc_id": library.forecast_id, "collection": "kb"}
                )
                seen["k"] = await session.call_tool("search", {"query": "leave", "collection": "kb", "k": 0})
                seen["unknown"] = await session.call_tool("ask", {"question": "leave?", "collection": "nope"})
                seen["filter"] = await session.call_tool(
                    "search", {"query": "leave", "collection": "kb", "filter": "mime = = 1"}
                )
                with Cairn(Settings(home=library.home)) as other:  # the vault only: no engine is opened
                    other.revoke_key(library.reader_id)
                seen["revoked"] = await session.call_tool("list_collections", {})
                return seen

    seen = run(scenario)
    tools = {tool.name: tool.description or "" for tool in seen["tools"]}
    assert set(tools) == TOOLS
    assert "'kb': 2 documents (batteries.txt, leave.md)" in tools["search"]

    assert seen["search"].structured_content["hits"][0]["source"].endswith("batteries.txt")
    assert "fireproof bin" in text_of(seen["search"])
    assert "120 days" in seen["ask"].structured_content["answer"]
    assert seen["ask"].structured_content["citations"][0]["source"].endswith("leave.md")

    assert all(h["doc_id"] != library.forecast_id for h in seen["hidden"].structured_content["hits"])
    assert seen["read"].is_error
    assert text_of(seen["read"]).startswith(f"no document {library.forecast_id!r}")

    assert seen["k"].is_error
    assert "k: Input should be greater than or equal to 1" in text_of(seen["k"])
    assert seen["unknown"].is_error
    assert text_of(seen["unknown"]).startswith("no collection 'nope'")
    assert seen["filter"].is_error
    assert text_of(seen["filter"]).startswith("filter syntax error at character 8: expected")

    assert seen["revoked"].is_error
    assert text_of(seen["revoked"]) == "this API key was revoked"


@pytest.mark.slow
def test_stdio_without_a_usable_key_stops_with_a_clear_error(stdio_library: Library) -> None:
    """Without CAIRN_API_KEY (and without --local) `cairn mcp` exits 2 saying what to set; with an unknown key
    it exits 2 saying so; stdout stays empty either way (it belongs to the protocol)."""
    home = stdio_library.home
    missing = subprocess.run(
        cairn_mcp(),
        env=mcp_environment(home),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert missing.returncode == 2
    assert "no API key: set CAIRN_API_KEY" in missing.stderr
    assert "--local" in missing.stderr
    assert missing.stdout == ""
    unknown = subprocess.run(
        cairn_mcp(),
        env=mcp_environment(home, CAIRN_API_KEY="cairn_0123456789abcdef_" + "x" * 43),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert unknown.returncode == 2
    assert "CAIRN_API_KEY is not usable: unknown API key" in unknown.stderr
    assert unknown.stdout == ""


# -- reading a version ------------------------------------------------------------------------------


def test_a_version_reads_as_its_text_without_the_overlap_between_chunks() -> None:
    """Consecutive chunks of one section repeat sentences (the chunker's overlap): the version's text has each
    once; a section whose text does not open with its heading (here a slide) is marked with its label."""

    def chunk(ordinal: int, text: str, location: Location) -> Chunk:
        return Chunk(
            chunk_id=f"c{ordinal}", doc_id="d", version=1, ordinal=ordinal, text=text, location=location, token_count=9
        )

    first = Location(slide=1, line_start=1)
    chunks = [
        chunk(0, "Budgets close in March. Reviews follow in April.", first),
        chunk(1, "Reviews follow in April. Raises start in May.", Location(slide=1, line_start=2)),
        chunk(2, "Hiring opens in June.", Location(slide=2)),
    ]
    info = DocumentInfo(
        doc_id="d", source="deck.pptx", mime="", tenant="acme", allowed=["*"], version=1, chunks=3, versions=[]
    )
    text = VersionText(info, "kb", 1, chunks).text()
    assert text == (
        "[slide 1]\n\nBudgets close in March. Reviews follow in April.\n\nRaises start in May.\n\n"
        "[slide 2]\n\nHiring opens in June."
    )
