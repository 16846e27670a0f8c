"""MCP over streamable HTTP at ``/mcp`` of the service, authenticated with cairn's API keys.

Every request to ``/mcp`` is authenticated before the SDK reads a byte of its body, by the same
dependency as every ``/v1`` route (``Authorization: Bearer cairn_...``, the key checked against the
vault, the per-key rate limit; ``--dev`` lets a request without a key act as the local administrator,
as elsewhere). A missing, unknown, expired or revoked key is answered 401 by the service's own error
handler, like every route, so the next request after a revocation fails. The principal then rides
with that one request to the tools (`cairn.mcp.server`).

The endpoint is stateless (no MCP session is kept between requests) and answers each POST with JSON:
any replica can answer any request, the way the rest of the API works behind a load balancer without
session affinity. With no session there is no server-sent stream to GET and nothing to DELETE, so
those answer 405, as the protocol allows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from cairn.auth import Principal
from cairn.core import Cairn
from cairn.errors import ConfigError, Unauthenticated

from .server import build_server

__all__ = ["MCP_PATH", "MCPEndpoint", "mount_mcp"]

MCP_PATH = "/mcp"

# Where the authenticated principal travels in the request's scope, from the endpoint to the tools.
_PRINCIPAL = "cairn_mcp_principal"


@dataclass(frozen=True)
class _Authenticated:
    """A principal the endpoint authenticated (``None`` inside: the local administrator of ``--dev``)."""

    principal: Principal | None


class MCPEndpoint:
    """The ASGI endpoint: authenticate the request with *identify*, then hand it to the SDK's transport."""

    def __init__(self, cairn: Cairn, identify: Callable[[Request], Principal | None], *, dev: bool = False) -> None:
        self.server = build_server(cairn, _principal_of)
        self.identify = identify
        # Without a key, --dev acts as the local administrator: then a web page that rebinds its own DNS name
        # to 127.0.0.1 must not reach /mcp, so only loopback Host and Origin headers are accepted.
        self.security = (
            TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
                allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
            )
            if dev
            else None
        )
        self._manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Serve while the block runs (the service's lifespan); a manager serves one lifespan only."""
        manager = StreamableHTTPSessionManager(
            self.server, json_response=True, stateless=True, security_settings=self.security
        )
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = self._manager
        if manager is None:
            raise ConfigError("the MCP endpoint is not running: serve the app with its lifespan (uvicorn does)")
        # Reading the key's record may touch the vault (S3): off the event loop, as the other routes do. A
        # refusal (Unauthenticated, RateLimited) is answered by the service's error handler, as on every route.
        principal = await anyio.to_thread.run_sync(self.identify, Request(scope))
        state = {**scope.get("state", {}), _PRINCIPAL: _Authenticated(principal)}
        await manager.handle_request({**scope, "state": state}, receive, send)


def _principal_of(ctx: ServerRequestContext[Any, Any]) -> Principal | None:
    """The principal the endpoint authenticated for this request; never a default."""
    request = ctx.request
    found = getattr(request.state, _PRINCIPAL, None) if isinstance(request, Request) else None
    if not isinstance(found, _Authenticated):
        raise Unauthenticated("no API key: send `Authorization: Bearer cairn_...`")
    return found.principal


def mount_mcp(app: FastAPI, endpoint: MCPEndpoint) -> None:
    """Serve *endpoint* at ``/mcp`` of *app* (not in the OpenAPI schema; never a public route)."""
    app.router.routes.append(Route(MCP_PATH, endpoint, methods=["POST"], name="mcp", include_in_schema=False))
