"""What listens where: TCP listeners inside a process's network namespace, and this host's external addresses."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import psutil


def listening_in_namespace_of(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP listener in the network namespace of ``pid``, from /proc/PID/net/tcp{,6}."""
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                address, port = fields[1].split(":")
                found.add((_address(address), int(port, 16)))
    return found


def _address(hex_address: str) -> str:
    """The kernel writes addresses as 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    return str(ipaddress.ip_address(b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))))


def external_addresses() -> list[str]:
    """This host's non-loopback IPv4 addresses: a server listening on every interface answers on them."""
    return [
        entry.address
        for entries in psutil.net_if_addrs().values()
        for entry in entries
        if entry.family == socket.AF_INET and not entry.address.startswith("127.")
    ]
