"""The README's "Other ways in" examples, run exactly as written against a real `cairn serve`.

Each ```` ```python ways-in:NAME ```` block of README.md is saved to a file and run as a script with
CAIRN_URL and CAIRN_API_KEY set; the MCP client configuration (```` ```json ways-in:mcp ````) is loaded
and both of its servers are reached with the official MCP client, the key and home put where the
README shows placeholders.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

README = Path(__file__).resolve().parents[2] / "README.md"
BIN = Path(sys.executable).parent
QUESTION_ANSWER = "120 days"


def _blocks() -> dict[str, str]:
    found = re.findall(r"```(?:python|json) ways-in:([\w-]+)\n(.*?)```", README.read_text(), flags=re.S)
    return dict(found)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A home with a small handbook ingested and a reader key (made by the CLI), and `cairn serve` on it."""
    root = tmp_path_factory.mktemp("ways-in")
    home, docs = root / "home", root / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text(
        "# Leave policy\n\n## Parental leave\n\nEmployees receive 120 days of paid parental leave.\n"
    )
    (docs / "travel.md").write_text("# Travel\n\nEconomy class for flights under six hours.\n")
    env = {**os.environ, "CAIRN_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    ingested = subprocess.run([str(BIN / "cairn"), "ingest", str(docs)], env=env, capture_output=True, timeout=300)
    assert ingested.returncode == 0, ingested.stderr
    made = subprocess.run(
        [str(BIN / "cairn"), "keys", "create", "--role", "admin", "--tenant", "default", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["key"]
    port = _free_port()
    log = (root / "serve.log").open("wb")
    server = subprocess.Popen(
        [str(BIN / "cairn"), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert server.poll() is None, (root / "serve.log").read_text()
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "cairn serve did not get ready"
        time.sleep(0.3)
    try:
        yield {"url": url, "key": key, "home": home, "env": env, "server": server, "root": root}
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        log.close()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("client", QUESTION_ANSWER),
        ("openai", QUESTION_ANSWER),
        ("langchain", "Parental leave"),
        ("llama-index", "leave.md"),
    ],
)
def test_each_python_way_in_runs_as_written(served: dict[str, Any], name: str, expected: str) -> None:
    """The README block runs as a plain script against the service and prints the cited leave passage."""
    script = served["root"] / f"example_{name.replace('-', '_')}.py"  # not openai.py: it would shadow openai
    script.write_text(_blocks()[name])
    env = {**served["env"], "CAIRN_URL": served["url"], "CAIRN_API_KEY": served["key"]}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert expected in done.stdout, done.stdout
    assert "leave.md" in done.stdout or name == "openai"


def _tool_names(session_factory: Any) -> list[str]:
    async def scenario() -> list[str]:
        async with session_factory() as session:
            await session.initialize()
            return sorted(tool.name for tool in (await session.list_tools()).tools)

    # In a thread of its own: Playwright's sync API (e2e tests) may leave a loop marked running in this thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(anyio.run, scenario).result()


def test_the_mcp_configuration_reaches_both_servers(served: dict[str, Any]) -> None:
    """The README's MCP client configuration, key and home filled in: its HTTP server lists cairn's tools over
    `/mcp`, and (the service stopped, since Milvus Lite serves one process) its stdio server does too."""
    servers = json.loads(_blocks()["mcp"])["mcpServers"]
    remote = servers["cairn-http"]
    url = remote["url"].replace("http://127.0.0.1:8000", served["url"])
    headers = {k: v.replace("cairn_...", served["key"]) for k, v in remote["headers"].items()}

    def http_session() -> Any:
        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def opened() -> Any:
            async with (
                httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120)) as client,
                streamable_http_client(url, http_client=client) as (read, write),
                ClientSession(read, write) as session,
            ):
                yield session

        return opened()

    over_http = _tool_names(http_session)
    assert {"search", "ask", "list_collections"} <= set(over_http)

    served["server"].send_signal(signal.SIGTERM)
    served["server"].wait(timeout=30)
    local = servers["cairn"]
    env = {**served["env"], **local["env"], "CAIRN_API_KEY": served["key"], "CAIRN_HOME": str(served["home"])}
    params = StdioServerParameters(command=str(BIN / local["command"]), args=local["args"], env=env)

    def stdio_session() -> Any:
        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def opened() -> Any:
            with (served["root"] / "mcp-stderr.log").open("w") as errlog:
                async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
                    yield session

        return opened()

    assert _tool_names(stdio_session) == over_http
