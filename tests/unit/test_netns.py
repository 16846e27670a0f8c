"""The stack's private network namespace (cairn.stack.netns), with real namespaces and real servers inside.

Creating a network namespace needs root or unprivileged user namespaces; this machine (and CI) allow it, and
the stack tests rely on it. The non-root path is exercised by running the holder as an unprivileged user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from tests.netns_helpers import external_addresses, listening_in_namespace_of

from cairn.stack.milvus import stop_process_group
from cairn.stack.netns import NetworkStartError, PrivateNetwork, start_private_network
from cairn.stack.seaweed import held_loopback_ports

_ECHO_SERVER = """
import socket, sys
server = socket.create_server(("0.0.0.0", int(sys.argv[1])))  # every interface, as Milvus 2.3 listens
while True:
    conn, _ = server.accept()
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data.upper())
"""


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[PrivateNetwork, int, int]]:
    """A namespace forwarding one public port, with echo servers inside on that port and on a hidden one."""
    with held_loopback_ports(2) as (public, hidden):
        pass
    net = start_private_network([public], tmp_path / "network.log")
    servers = [
        subprocess.Popen([*net.enter(), sys.executable, "-c", _ECHO_SERVER, str(port)], start_new_session=True)
        for port in (public, hidden)
    ]
    try:
        _wait_inside(servers[0].pid, public)
        _wait_inside(servers[1].pid, hidden)
        yield net, public, hidden
    finally:
        for server in servers:
            stop_process_group(server.pid, 5)
            server.wait()
        stop_process_group(net.holder_pid, 5)


def _wait_inside(pid: int, port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if port in {listening for _, listening in listening_in_namespace_of(pid)}:
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} inside the namespace")


def _echo(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        received = b""
        while data := conn.recv(65536):
            received += data
    return received


def test_a_public_port_reaches_the_server_inside_both_ways(network: tuple[PrivateNetwork, int, int]) -> None:
    _, public, _ = network
    payload = os.urandom(3_000_000).hex().encode()  # several MB: the forwarder streams, both directions
    assert _echo(public, payload) == payload.upper()
    assert _echo(public, b"again") == b"AGAIN"  # and it keeps serving new connections


def test_a_server_listening_on_every_interface_inside_is_reachable_only_through_its_forwarded_port(
    network: tuple[PrivateNetwork, int, int],
) -> None:
    net, public, hidden = network
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", hidden), timeout=2):
        pass
    for address in external_addresses():
        for port in (public, hidden):
            with pytest.raises(ConnectionRefusedError), socket.create_connection((address, port), timeout=2):
                pass
    # The host's only listener is the holder's, on loopback.
    listening = [c.laddr for c in psutil.Process(net.holder_pid).net_connections("tcp")]
    assert [(addr.ip, addr.port) for addr in listening] == [("127.0.0.1", public)]


def test_a_connection_while_the_server_inside_is_down_is_closed_not_left_hanging(tmp_path: Path) -> None:
    with held_loopback_ports(1) as (port,):
        pass
    net = start_private_network([port], tmp_path / "network.log")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            assert conn.recv(1) == b""  # EOF at once: the client retries instead of waiting for a timeout
    finally:
        stop_process_group(net.holder_pid, 5)


def test_a_taken_public_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(NetworkStartError, match=rf"cannot listen on 127\.0\.0\.1:{port}"):
            start_private_network([port], tmp_path / "network.log")


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to an unprivileged user needs root")
def test_an_unprivileged_user_gets_a_namespace_through_a_user_namespace() -> None:
    with held_loopback_ports(1) as (port,):
        pass
    source = Path(__file__).parents[2] / "src" / "cairn" / "stack" / "netns.py"
    folder = Path(tempfile.mkdtemp(prefix="cairn-netns-"))  # pytest's tmp_path is private to root
    folder.chmod(0o755)
    script = folder / "holder.py"
    script.write_text(source.read_text())  # the holder is stdlib only: run it as `nobody` with Debian's python3
    script.chmod(0o644)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    holder = subprocess.Popen(
        [*nobody, "/usr/bin/python3", str(script), str(port)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().split() == ["ready", "user"]
        net = PrivateNetwork(holder.pid, user_namespace=True)
        inside = subprocess.run(
            [*nobody, *net.enter(), "cat", "/proc/net/dev"], capture_output=True, text=True, check=True
        )
        interfaces = [line.split(":")[0].strip() for line in inside.stdout.splitlines()[2:]]
        assert interfaces == ["lo"]  # the namespace has its own loopback and nothing else
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(holder.pid, signal.SIGTERM)
        holder.wait(timeout=5)
        shutil.rmtree(folder)
