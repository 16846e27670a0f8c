"""A private network namespace for the stack's servers, with only their public ports forwarded to host loopback.

Milvus 2.3 cannot be told which address its gRPC servers listen on: its proxy and seven internal component
ports (unauthenticated) listen on every interface. SeaweedFS's gRPC ports are unauthenticated too. So the stack
runs its servers in a network namespace of their own, whose only interface is its own loopback, and a small
holder process forwards the few ports clients need (S3, the Milvus proxy, Milvus's health port, PostgreSQL) from
the host's 127.0.0.1 into it. Nothing else of the stack can be reached from the host, let alone from the network.

The holder (``python netns.py PORT...``, this file run as a script):

1. binds every public port on the host's 127.0.0.1 first (so a taken port fails here, in the host namespace);
2. moves itself into a new network namespace (as root; otherwise into a new user namespace as well, which the
   kernel allows unprivileged users on most distributions) and brings that namespace's loopback up;
3. prints ``ready`` and forwards each connection accepted on a host port to the same port on the namespace's
   loopback, until SIGTERM.

Servers join the namespace with ``nsenter --target HOLDER --net`` (util-linux), see `PrivateNetwork.enter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import functools
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NamespaceUnavailableError", "NetworkStartError", "PrivateNetwork", "start_private_network"]

LOOPBACK = "127.0.0.1"
_READY = "ready"
_NO_NAMESPACE = "no namespace:"
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_CHUNK = 256 * 1024


class NamespaceUnavailableError(RuntimeError):
    """This host cannot give the stack a network namespace of its own (no permission, or no nsenter)."""


class NetworkStartError(RuntimeError):
    """The holder could not start: a public port is taken, or it did not answer."""


@dataclass(frozen=True)
class PrivateNetwork:
    """A running holder process: the namespace lives as long as it (or a server inside) does."""

    holder_pid: int
    user_namespace: bool

    def enter(self) -> list[str]:
        """The command prefix that starts a program inside the namespace."""
        prefix = ["nsenter", f"--target={self.holder_pid}", "--net"]
        if self.user_namespace:
            prefix += ["--user", "--preserve-credentials"]
        return [*prefix, "--"]

    def enter_unprivileged(self) -> list[str]:
        """Like `enter`, for a program that refuses to run as root (PostgreSQL): in the user namespace the caller is
        root, so it runs in one more, as uid 1 (still the caller outside)."""
        if not self.user_namespace:
            return self.enter()
        return [*self.enter(), "unshare", "--user", "--map-user=1", "--map-group=1", "--"]


def start_private_network(ports: list[int], log_path: Path, timeout: float = 15.0) -> PrivateNetwork:
    """Start a holder forwarding ``ports``.

    Raises NamespaceUnavailableError when this host allows no namespace, NetworkStartError for anything else.
    """
    if shutil.which("nsenter") is None:
        raise NamespaceUnavailableError("the `nsenter` program (Debian package util-linux) is not installed")
    with log_path.open("ab") as log:
        holder = subprocess.Popen(
            # This file as a script: the holder needs only the standard library, not the cairn package.
            [sys.executable, str(Path(__file__).resolve()), *map(str, ports)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
            text=True,
        )
    assert holder.stdout is not None
    try:
        line = _read_line(holder, timeout)
    finally:
        holder.stdout.close()
    if not line.startswith(_READY):
        with contextlib.suppress(ProcessLookupError):
            holder.kill()
        holder.wait(timeout=5)
        if line.startswith(_NO_NAMESPACE):
            raise NamespaceUnavailableError(line.removeprefix(_NO_NAMESPACE).strip())
        raise NetworkStartError(line.strip() or f"the namespace holder exited with code {holder.returncode}")
    return PrivateNetwork(holder.pid, user_namespace=line.split()[-1] == "user")


def _read_line(holder: subprocess.Popen[str], timeout: float) -> str:
    assert holder.stdout is not None
    readable, _, _ = select.select([holder.stdout], [], [], timeout)
    if not readable:
        return f"the namespace holder did not get ready within {timeout:.0f} s"
    return holder.stdout.readline()


# -- the holder process ------------------------------------------------------------------------------------------
def _enter_new_namespace() -> bool:
    """Move this (single-threaded) process into a new network namespace; True if a user namespace was needed."""
    if os.geteuid() == 0:
        _unshare(_CLONE_NEWNET)
        return False
    uid, gid = os.geteuid(), os.getegid()
    _unshare(_CLONE_NEWUSER | _CLONE_NEWNET)
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
    Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
    return True


def _unshare(flags: int) -> None:
    """unshare(2) through libc: `os.unshare` needs Python 3.12."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare: {os.strerror(errno)}")


def _loopback_up() -> None:
    """A new namespace's `lo` is down: set IFF_UP, as `ip link set lo up` would."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(control, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(control, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(_CHUNK):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


async def _forward(port: int, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
    try:
        # Created after unshare, so this socket belongs to the namespace: it reaches the server inside.
        server_reader, server_writer = await asyncio.open_connection(LOOPBACK, port)
    except OSError:
        client_writer.close()  # the server inside is down (or restarting): the client sees a closed connection
        return
    try:
        await asyncio.gather(_copy(client_reader, server_writer), _copy(server_reader, client_writer))
    except OSError:
        pass  # a reset on either side ends both directions
    finally:
        for writer in (client_writer, server_writer):
            writer.close()


async def _serve(listeners: dict[int, socket.socket]) -> None:
    servers = [
        await asyncio.start_server(functools.partial(_forward, port), sock=sock) for port, sock in listeners.items()
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str]) -> int:
    listeners: dict[int, socket.socket] = {}
    for port in map(int, argv):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))  # in the host's namespace: these are the stack's only host listeners
        except OSError as exc:
            print(f"cannot listen on {LOOPBACK}:{port}: {exc.strerror}", flush=True)
            return 1
        sock.listen(256)
        listeners[port] = sock
    try:
        user_namespace = _enter_new_namespace()
        _loopback_up()
    except OSError as exc:
        print(_NO_NAMESPACE, f"this host does not allow one ({exc.strerror or exc})", flush=True)
        return 1
    print(_READY, "user" if user_namespace else "net", flush=True)
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the starter has stopped reading
    asyncio.run(_serve(listeners))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
