"""docs/api.md works as written: every ``sh`` block runs, in order, against a real ``cairn serve``.

The blocks share one shell session the way a reader's terminal does: each runs in its own
``bash -e -o pipefail``, with the variables the earlier blocks exported (all assignments are, via
``set -a``) restored from a state file. The block whose first line is ``# in another terminal``
starts the server; the test starts it itself instead, once the blocks before it (which create the
admin key ``cairn serve`` requires) have run.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "api.md"
SERVER_MARK = "# in another terminal"
BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)

# Restores the exported variables of earlier blocks, runs one block, and saves them again, also on failure.
RUNNER = """set -a
. "$DOC_STATE"
trap 'status=$?; export -p > "$DOC_STATE"; exit $status' EXIT
set -eo pipefail
"""


@dataclass
class Ran:
    """One block of the page and what it printed (stdout, then stderr)."""

    source: str
    output: str


def sh_blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text(encoding="utf-8"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_block(source: str, env: dict[str, str]) -> Ran:
    done = subprocess.run(
        ["bash", "-c", RUNNER + source], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"this block of docs/api.md exited {done.returncode}:\n{source}\n--- output:\n{output}"
    return Ran(source, output)


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    """A reader's terminal: the venv's bin first on PATH, a fresh CAIRN_HOME, CAIRN_URL on a free port."""
    state = tmp_path / "shell-state"
    state.write_text("")
    env = dict(os.environ)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        CAIRN_HOME=str(tmp_path / "home"),
        CAIRN_URL=f"http://127.0.0.1:{free_port()}",
        DOC_STATE=str(state),
    )
    return env


class Server:
    """`cairn serve` on the port CAIRN_URL names, in its own process group so that all of it can be stopped."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        port = self.env["CAIRN_URL"].rsplit(":", 1)[1]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "cairn"), "serve", "--port", port],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"cairn serve exited {self.process.returncode}:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.env['CAIRN_URL']}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"cairn serve did not answer /healthz within 60 s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def server(shell_env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    """Started by the test when the docs reach the server block; stopped, with its process group, at the end."""
    server = Server(shell_env, tmp_path / "server.log")
    yield server
    server.stop()


def outputs(ran: list[Ran], *fragments: str) -> list[str]:
    """The outputs of the blocks whose source holds every fragment, in document order; at least one."""
    found = [r.output for r in ran if all(f in r.source for f in fragments)]
    assert found, f"no block of docs/api.md holds {fragments}"
    return found


def test_every_sh_block_of_the_api_walkthrough_runs_against_a_real_server(
    shell_env: dict[str, str], server: Server
) -> None:
    """Runs docs/api.md's commands in order; each exits 0, and the key outputs are what the page says."""
    blocks = sh_blocks()
    server_blocks = [i for i, b in enumerate(blocks) if b.startswith(SERVER_MARK)]
    assert len(server_blocks) == 1, "docs/api.md needs exactly one block starting with the server mark"
    assert "cairn serve" in blocks[server_blocks[0]]
    assert "export CAIRN_URL=http://127.0.0.1:8000" in DOC.read_text(encoding="utf-8")

    ran: list[Ran] = []
    for index, source in enumerate(blocks):
        if index == server_blocks[0]:
            server.start()
            continue
        ran.append(run_block(source, shell_env))

    assert outputs(ran, "/healthz")[0].splitlines() == [
        '{"status":"ok"}',
        '{"status":"ready","components":{"catalog":"ok","vault":"ok","index":"ok"}}',
    ]
    first_job = outputs(ran, "/events")[0]
    assert '"state": "done"' in first_job
    assert '"ingested": 4' in first_job

    listed = outputs(ran, '-H "Authorization: Bearer $READER_KEY" \\\n  | python -c "$DOCS"')[0].splitlines()
    assert len(listed) == 9, listed  # five documents for the editor, then four for the reader
    assert sum("employee-handbook.md" in line for line in listed[:5]) == 1
    assert not any("employee-handbook.md" in line for line in listed[5:])

    assert "version 1 is the original, byte for byte" in outputs(ran, "versions/1/content")[0]
    assert 'content-disposition: attachment; filename="employee-handbook.md"' in outputs(ran, "versions/2/content")[0]

    before, after = outputs(ran, "$READER_KEY", "How many days of paid parental leave?", "/v1/search")
    assert "employee-handbook.md" not in before
    assert after.startswith("employee-handbook.md | ")
    assert "Parental leave" in after.splitlines()[0]

    assert {line.split(" | ")[0] for line in outputs(ran, "application/pdf")[0].splitlines()} == {
        "field-operations-manual.pdf"
    }
    assert '"code":"invalid_request"' in outputs(ran, 'tenant = \\"globex\\"')[0]
    assert "HTTP 400" in outputs(ran, 'tenant = \\"globex\\"')[0]

    plain, streamed = outputs(ran, "/v1/ask")
    assert "120 days" in plain
    assert "event: citations" in streamed
    assert streamed.rstrip().endswith("data: {}")

    chat = outputs(ran, "/v1/models", "/v1/chat/completions")[0]
    assert '"id":"default"' in chat
    assert "swollen" in chat.lower()
    assert outputs(ran, "/v1/chat/completions", '"stream": true')[0].rstrip().endswith("data: [DONE]")

    revoked = outputs(ran, "DELETE", "/v1/keys/")[0]
    assert "this API key was revoked" in revoked
    assert revoked.rstrip().endswith("HTTP 401")

    purged = outputs(ran, "purge=true")[0]
    assert purged.startswith("removed ")
    assert "employee-handbook.md" not in purged.split("\n", 1)[1]
    assert purged.rstrip().endswith("HTTP 404")
