"""MCP over stdin and stdout, for an agent that starts ``cairn mcp`` itself (the key comes from its environment)."""

from __future__ import annotations

from typing import Any

import anyio
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server
from pydantic import SecretStr

from cairn.auth import Principal
from cairn.core import Cairn

from .server import build_server

__all__ = ["serve_stdio"]


def serve_stdio(cairn: Cairn, key: SecretStr | None) -> None:
    """Serve until the client closes stdin, as *key*'s principal, or as the trusted local caller when ``None``.

    The key is authenticated again for every request, so a key revoked meanwhile fails on the next one.
    While serving, the SDK points file descriptor 1 at stderr: stray output (a library's, a child process's)
    cannot corrupt the protocol.
    """

    def caller(_: ServerRequestContext[Any, Any]) -> Principal | None:
        return None if key is None else cairn.keys.authenticate(key.get_secret_value())

    server = build_server(cairn, caller, warm=True)

    async def serve() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(serve)
