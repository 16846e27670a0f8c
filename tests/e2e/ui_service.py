"""The e2e suite's service and browser helpers: a real cairn service on loopback, Debian's Chromium.

The service is `create_app` over a real `Cairn` (Milvus Lite, the packaged embedder) in a temporary
CAIRN_HOME, run by uvicorn in a thread on a free 127.0.0.1 port. It starts with keys for an admin, an
editor (group hr) and a reader (group sales) of tenant acme, and a small corpus: the employee handbook
for hr only, two documents for everyone, and one whose text carries remote images and links.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cairn import Cairn, Settings
from cairn.http import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Read at import: the suite's autouse fixture clears CAIRN_* variables before every test.
ARTIFACTS = Path(os.environ.get("CAIRN_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")
CORPUS = Path(__file__).parents[2] / "src" / "cairn" / "demo" / "corpus"
TENANT = "acme"

# A document whose text holds remote images and links: the UI must show them as plain text only.
# Port 9 (discard) on loopback: a browser that tried to load them would leave a request behind.
REMOTE_MARKUP = (
    "Zephyr lighthouse\n\n"
    "The Zephyr lighthouse beacon is serviced every 45 days by the coastal team. "
    '<img src="http://127.0.0.1:9/pixel.png" alt="tracker"> '
    "![logo](http://127.0.0.1:9/logo.png) "
    "[service form](http://127.0.0.1:9/form)\n"
)


@dataclass
class Service:
    """The running service: its address, the tokens by role, and the ingested source files."""

    url: str
    cairn: Cairn
    tokens: dict[str, str]
    key_ids: dict[str, str]
    files: dict[str, Path]


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def running_service(root: Path, embedder: Any) -> Iterator[Service]:
    """The service over a fresh CAIRN_HOME under *root*, with its keys and corpus, until the block ends."""
    import uvicorn

    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("CAIRN_"):
                env.delenv(name)
        env.setenv("CAIRN_CONFIG", str(root / "no-cairn.toml"))
        cairn = Cairn(Settings(home=root / "home"))
    cairn._embedder = embedder

    tokens: dict[str, str] = {}
    key_ids: dict[str, str] = {}
    for role, user, groups in (("admin", "ada", []), ("editor", "erin", ["hr"]), ("reader", "rob", ["sales"])):
        tokens[role], record = cairn.create_key(role=role, tenant=TENANT, user=user, groups=groups)
        key_ids[role] = record.key_id

    corpus = root / "corpus"
    (corpus / "hr").mkdir(parents=True)
    (corpus / "all").mkdir()
    shutil.copy(CORPUS / "employee-handbook.md", corpus / "hr")
    shutil.copy(CORPUS / "drone-safety.md", corpus / "all")
    shutil.copy(CORPUS / "faq.txt", corpus / "all")
    (corpus / "all" / "lighthouse.txt").write_text(REMOTE_MARKUP)
    cairn.ingest([corpus / "hr"], collection="default", tenant=TENANT, allow=["hr"])
    cairn.ingest([corpus / "all"], collection="default", tenant=TENANT, allow=["*"])
    files = {p.name: p for p in corpus.rglob("*") if p.is_file()}

    sock = _free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(cairn), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the cairn service did not start")
        time.sleep(0.05)
    try:
        yield Service(f"http://127.0.0.1:{port}", cairn, tokens, key_ids, files)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        cairn.close()


def sign_in(page: Any, service: Service, role: str) -> None:
    """Open the UI and sign in with the key of *role*; returns once the app is shown."""
    from playwright.sync_api import expect

    page.goto(service.url + "/")
    page.get_by_label("API key", exact=True).fill(service.tokens[role])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def artifact(name: str) -> Path:
    """Where to save the artifact *name* (a screenshot), creating the folder."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
