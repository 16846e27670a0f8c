"""The HTTP service: FastAPI over the same `Cairn` methods the CLI calls.

Every route except the allowlisted health and metrics routes needs an API key (``Authorization:
Bearer cairn_...``); the principal it authenticates is handed to `Cairn`, which enforces roles,
tenants and ACLs in one place (`cairn.access`). Errors are JSON ``{"error": {"code", "message"}}``
with stable codes; unexpected failures say "internal error" and nothing more.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio.to_thread
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn import __version__
from cairn.access import authorize
from cairn.auth import Principal
from cairn.core import Cairn
from cairn.errors import (
    AuthError,
    CairnError,
    CatalogError,
    ConfigError,
    DiskFull,
    Forbidden,
    GenerationError,
    IndexUnavailable,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    ParseError,
    RateLimited,
    StorageError,
    Unauthenticated,
)
from cairn.mcp import MCPEndpoint, mount_mcp

from .jobs import JobBoard
from .streams import StreamBudget
from .ui import UI_ROUTES, mount_ui

__all__ = ["PUBLIC_ROUTES", "READY_PROBE_S", "ServiceLimits", "create_app", "probe_components"]

log = logging.getLogger("cairn.http")

# Routes that answer without a key: liveness, readiness, metrics, the API description and the web UI's
# page (its assets under /ui/ are a mount; they hold no data, which comes only through the /v1 API).
PUBLIC_ROUTES = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"} | UI_ROUTES
)

# The upload route, whose multipart body is checked against the key before it is read (`_UploadGate`).
_UPLOAD = re.compile(r"/v1/collections/([^/]+)/documents/?")

_STATUS: list[tuple[type[CairnError], int, str]] = [
    (Unauthenticated, 401, "unauthenticated"),
    (Forbidden, 403, "forbidden"),
    (AuthError, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (RateLimited, 429, "rate_limited"),
    (InvalidRequest, 400, "invalid_request"),
    (LimitExceeded, 413, "too_large"),
    (ParseError, 422, "unparseable"),
    (ConfigError, 503, "misconfigured"),
    (DiskFull, 507, "disk_full"),
    (StorageError, 503, "storage_unavailable"),
    (CatalogError, 503, "catalog_unavailable"),
    (IndexUnavailable, 503, "index_unavailable"),
    (GenerationError, 502, "llm_unavailable"),
    (CairnError, 500, "internal"),
]


@dataclass(frozen=True)
class ServiceLimits:
    """Bounds on what one request may cost."""

    max_request_bytes: int = 1024 * 1024
    max_upload_bytes: int = 200 * 1024 * 1024
    requests_per_minute: int = 600
    # Time to the first byte of the response; streams then flow. The work of a request that runs
    # out of time is abandoned by the client, not killed: keep it below the proxy's own timeout.
    request_timeout_s: float = 60.0
    # Long-lived responses (job events, streamed answers) open at once: per key, and in all.
    streams_per_key: int = 4
    streams_total: int = 32


class _RateLimiter:
    """A token bucket per key: *per_minute* requests, refilled continuously."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Take a token for *key* and return 0, or, when none is left, the seconds until one is."""
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0


class _BodyLimit:
    """Counts the bytes a request body actually carries (chunked bodies declare no length)."""

    def __init__(self, app: ASGIApp, limits: ServiceLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        bound = self.limits.max_upload_bytes if path.endswith("/documents") else self.limits.max_request_bytes
        seen = 0
        exceeded = False
        replaced = False

        async def limited() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > bound:
                    exceeded = True
                    raise LimitExceeded(f"request bodies are limited to {bound} bytes")
            return message

        async def answer(message: Message) -> None:
            # Whatever the app makes of the aborted read, the client learns the body was too large.
            nonlocal replaced
            if not exceeded:
                await send(message)
                return
            if not replaced:
                replaced = True
                body = json.dumps(error_body("too_large", f"request bodies are limited to {bound} bytes")).encode()
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 413, "headers": headers})
                await send({"type": "http.response.body", "body": body})

        await self.app(scope, limited, answer)


class _UploadGate:
    """Refuses an upload before reading its body when the key may not upload to the collection.

    FastAPI reads (and spools) a multipart body before it resolves the route's dependencies, so
    without this a caller with no key, a wrong key or a reader's key could make the service take
    in a whole large body before the 401 or 403. The route checks again, with the form's fields.
    """

    def __init__(self, app: ASGIApp, cairn: Cairn, dev: bool) -> None:
        self.app = app
        self.cairn = cairn
        self.dev = dev

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _UPLOAD.fullmatch(str(scope.get("path", ""))) if scope["type"] == "http" else None
        if match is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"authorization"), "")
        try:
            # Reading the key's record may touch the vault (S3): off the event loop.
            principal = await anyio.to_thread.run_sync(_authenticate_header, self.cairn, header, self.dev)
            authorize(principal, "ingest", match.group(1))
        except CairnError as exc:  # a refusal, or the key records' store (the vault) or the catalog unreachable
            status, code, message = error_of(exc)
            if status >= 500:
                log.error("upload refused: %s: %r", scope.get("path"), exc)
            body = json.dumps(error_body(code, message)).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            # The unread body stays unread: the connection closes after this answer.
            headers.append((b"connection", b"close"))
            if status == 401:
                headers.append((b"www-authenticate", b"Bearer"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def _authenticate_header(cairn: Cairn, header: str, dev: bool) -> Principal | None:
    """The principal of an ``Authorization`` header; ``None`` (the local administrator) only in dev without one."""
    if not header and dev:
        return None  # --dev: the local administrator
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("no API key: send `Authorization: Bearer cairn_...`")
    return cairn.keys.authenticate(token)


# How long /readyz waits for each component; the probes run at once, so the whole answer takes at most this long.
READY_PROBE_S = 3.0


async def probe_components(cairn: Cairn) -> dict[str, str]:
    """Each component's state for /readyz: ``ok``, ``unavailable`` (it answered with an error) or ``timeout`` (no
    answer within `READY_PROBE_S`). /readyz needs no key, so the errors themselves go only to the server log."""
    # Lambdas: opening a component (the first `cairn.catalog`, say) is part of its probe, in its thread.
    probes: dict[str, Callable[[], object]] = {
        "catalog": lambda: cairn.catalog.ping(),
        "vault": lambda: cairn.vault.list_collections(),
        "index": lambda: cairn.index.has_collection("readyz_probe"),
    }

    async def run(name: str) -> str:
        try:
            # A probe that hangs is abandoned, not waited for: its thread ends when its own timeout fires.
            with anyio.fail_after(READY_PROBE_S):
                await anyio.to_thread.run_sync(probes[name], abandon_on_cancel=True)
        except TimeoutError:
            log.warning("readiness: the %s did not answer within %g s", name, READY_PROBE_S)
            return "timeout"
        except Exception as exc:
            log.warning("readiness: the %s is unavailable: %r", name, exc)
            return "unavailable"
        return "ok"

    results = await asyncio.gather(*(run(name) for name in probes))
    return dict(zip(probes, results, strict=True))


def error_of(exc: CairnError) -> tuple[int, str, str]:
    """The HTTP status, the stable code and the message a client is shown for *exc*.

    Unavailable components (the vault, the catalog, the index) are named with what to do; other server-side
    failures say "internal error" and nothing more (the details go to the server log).
    """
    status, code = next((s, c) for kind, s, c in _STATUS if isinstance(exc, kind))
    message = (
        str(exc)
        if status < 500 or isinstance(exc, (ConfigError, StorageError, CatalogError, IndexUnavailable))
        else "internal error"
    )
    if isinstance(exc, GenerationError):
        # The endpoint's address and its error text stay in the server log.
        message = "the language model endpoint did not answer; try again, or ask an administrator"
    return status, code, message


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def create_app(cairn: Cairn, *, dev: bool = False, limits: ServiceLimits | None = None, worker: bool = True) -> FastAPI:
    """The service for *cairn*. With ``dev``, requests without a key act as the local administrator. With
    ``worker`` (the default), a worker thread runs the catalog's jobs while the app runs (`cairn.jobs`)."""
    limits = limits or ServiceLimits()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.jobs.start()
        try:
            async with app.state.mcp.running():  # the MCP endpoint's transport lives as long as the app
                yield
        finally:
            app.state.jobs.close()
            app.state.streams.close()

    app = FastAPI(
        lifespan=lifespan,
        title="cairn",
        version=__version__,
        description="Retrieval-augmented search and answers over your documents, with keys, roles and ACLs.",
    )
    app.state.cairn = cairn
    app.state.jobs = JobBoard(cairn, worker=worker)
    app.state.streams = StreamBudget(per_key=limits.streams_per_key, total=limits.streams_total)
    app.state.limits = limits
    app.state.dev = dev
    app.add_middleware(_BodyLimit, limits=limits)
    app.add_middleware(_UploadGate, cairn=cairn, dev=dev)
    limiter = _RateLimiter(limits.requests_per_minute)
    registry = CollectorRegistry()
    requests = Counter("cairn_http_requests", "HTTP requests", ["route", "status"], registry=registry)
    latency = Histogram("cairn_http_request_seconds", "HTTP request latency", ["route"], registry=registry)

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        declared = request.headers.get("content-length")
        bound = limits.max_upload_bytes if request.url.path.endswith("/documents") else limits.max_request_bytes
        if declared is not None and (not declared.isdigit() or int(declared) > bound):
            return JSONResponse(error_body("too_large", f"request bodies are limited to {bound} bytes"), 413)
        started = time.perf_counter()
        try:
            response = await asyncio.wait_for(call_next(request), limits.request_timeout_s)
        except TimeoutError:
            message = (
                f"the request took longer than {limits.request_timeout_s:g} s; try a smaller k or a narrower filter"
            )
            response = JSONResponse(error_body("timeout", message), 504)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        requests.labels(name, str(response.status_code)).inc()
        latency.labels(name).observe(time.perf_counter() - started)
        return response

    @app.exception_handler(CairnError)
    async def cairn_error(request: Request, exc: CairnError) -> JSONResponse:
        status, code, message = error_of(exc)
        if status >= 500:
            log.error("request failed: %s %s: %r", request.method, request.url.path, exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        return JSONResponse(error_body(code, message), status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}" for e in exc.errors()
        )
        return JSONResponse(error_body("invalid_request", problems or "invalid request"), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # 400: a body FastAPI could not decode at all (such as JSON nested deeper than the decoder allows).
        code = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal", "internal error"), 500)

    def principal(request: Request) -> Principal | None:
        who = _authenticate_header(cairn, request.headers.get("authorization", ""), dev)
        if who is None:
            return None
        if wait := limiter.wait(who.key_id):
            raise RateLimited(
                f"rate limit of {limits.requests_per_minute} requests a minute exceeded; retry in {math.ceil(wait)} s",
                retry_after=wait,
            )
        return who

    app.state.principal_dependency = principal
    # MCP over streamable HTTP at /mcp (cairn.mcp.http): every request authenticated by `principal`, as above.
    app.state.mcp = MCPEndpoint(cairn, principal, dev=dev)
    mount_mcp(app, app.state.mcp)

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["service"])
    async def readyz() -> JSONResponse:
        """Readiness: the catalog, the vault and the engine each answer within `READY_PROBE_S`; the JSON names
        each component's state (``ok``, or what went wrong) so an operator sees which one is down."""
        components = await probe_components(cairn)
        ready = all(state == "ok" for state in components.values())
        body = {"status": "ready" if ready else "unavailable", "components": components}
        return JSONResponse(body, 200 if ready else 503)

    @app.get("/metrics", tags=["service"])
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    from .routes import register

    register(app)
    mount_ui(app)  # the web UI at / (assets under /ui/), each response with a strict Content-Security-Policy

    return app
