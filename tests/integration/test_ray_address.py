"""`cairn ingest --engine ray --ray-address ADDR`: a CLI process joins a Ray cluster started apart from it.

The cluster is a real `ray start --head` on 127.0.0.1 (its own GCS, raylet and workers), as an operator or KubeRay
would start one; the ingest runs in a separate `cairn` process that only knows the address.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REAL = Path(__file__).parent.parent / "fixtures" / "real"
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_ingest_joins_a_ray_cluster_by_its_address(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("apache-2.0.txt", "valgrind-quick-start.html", "pip-repeatable-installs.md"):
        shutil.copy(REAL / "docs" / name, folder / name)
    port = _free_port()
    scratch = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "RAY_"))}
    # Servers here listen on loopback only; Ray rewrites a 127.0.0.1 address into the machine's own address unless
    # it is told that the cluster is a single machine's (what this variable does on Linux too).
    env |= {"RAY_TMPDIR": scratch, "HF_HUB_OFFLINE": "1", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    # Token authentication, as deploy/ray/raycluster.yaml runs the cluster: head and driver share the token.
    env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
         "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={scratch}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:  # the GCS answers on its port once the head is up
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert head.poll() is None, f"ray start failed: {head.stderr.read() if head.stderr else ''}"
            assert time.monotonic() < deadline, "the Ray head did not start in 120 s"
            time.sleep(0.5)
        done = subprocess.run(
            [str(BIN / "cairn"), "ingest", str(folder), "--engine", "ray", "--ray-address", f"127.0.0.1:{port}",
             "--json"],
            env=env | {"CAIRN_HOME": str(tmp_path / "home")}, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout)
        assert (report["ingested"], report["failed"]) == (3, [])
        assert report["chunks"] > 3
        found = subprocess.run(
            [str(BIN / "cairn"), "search", "repeatable installs with pinned requirements", "--json"],
            env=env | {"CAIRN_HOME": str(tmp_path / "home")}, capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        assert json.loads(found.stdout)["hits"][0]["source"].endswith("pip-repeatable-installs.md")
    finally:
        head.terminate()  # --block: the head stops its cluster's processes when it is stopped
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)
