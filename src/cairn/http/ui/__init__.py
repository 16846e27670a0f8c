"""The browser UI: HTML, CSS and JavaScript modules shipped in the package, served at ``/``.

The assets hold no data, so they answer without a key; every document, answer and key reaches the
browser through the authenticated ``/v1`` API, with the key the user signs in with. Every UI response
carries a strict Content-Security-Policy (scripts, styles, images and connections from this origin
only, nothing inline, no frames), and the scripts put server text into the page with ``textContent``
only, so text from documents can never become markup, a remote image or a link.

``/`` is the page (a route, listed in ``PUBLIC_ROUTES``); ``/ui/NAME`` serves the assets of the
``static`` folder (a mount), read once when the app is built.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import PurePosixPath

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

__all__ = ["CONTENT_SECURITY_POLICY", "UI_ROUTES", "mount_ui"]

UI_ROUTES = frozenset({"/"})

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _load_assets() -> dict[str, tuple[bytes, str]]:
    """Name → (bytes, media type) for every asset of the packaged ``static`` folder."""
    folder = files(__name__).joinpath("static")
    assets: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        media_type = _MEDIA_TYPES.get(PurePosixPath(entry.name).suffix)
        if entry.is_file() and media_type is not None:
            assets[entry.name] = (entry.read_bytes(), media_type)
    if "index.html" not in assets:
        raise RuntimeError("the packaged web UI is missing index.html; reinstall cairn")
    return assets


def mount_ui(app: FastAPI) -> None:
    """Serve the page at ``/`` and its assets under ``/ui/``, each with the UI's security headers."""
    assets = _load_assets()

    def reply(name: str) -> Response:
        body, media_type = assets[name]
        return Response(body, media_type=media_type, headers=_HEADERS)

    async def page(request: Request) -> Response:
        return reply("index.html")

    async def asset(request: Request) -> Response:
        name = str(request.path_params["name"])
        if name not in assets:
            body = {"error": {"code": "not_found", "message": f"no UI asset {name!r}"}}
            return JSONResponse(body, 404, headers=_HEADERS)
        return reply(name)

    app.router.routes.append(Route("/", page, methods=["GET"], include_in_schema=False))
    app.router.routes.append(Mount("/ui", routes=[Route("/{name}", asset, methods=["GET"])]))
