"""`cairn serve`: the HTTP service on uvicorn."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from cairn.cli.output import console, err_console, fail


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    dev: Annotated[
        bool, typer.Option("--dev", help="Allow requests without a key, as the local admin (loopback only).")
    ] = False,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Run an ingest worker in this process (default); with --no-worker, `cairn worker` processes run jobs.",
        ),
    ] = True,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs). Refuses to start without an admin key unless --dev."""
    import uvicorn

    from cairn.core import Cairn
    from cairn.http import create_app

    cairn = Cairn()
    if dev and not _loopback(host):
        fail("--dev serves without authentication, so it only listens on a loopback address", as_json=False, code=2)
    if not dev and not cairn.keys.has_admin():
        fail(
            "no admin API key exists, so nobody could manage this service; create one first with "
            "`cairn keys create --role admin --tenant YOUR_TENANT`, or run with --dev on this machine only",
            as_json=False,
            code=2,
        )
    if dev:
        err_console.print("[bold yellow]--dev: requests without a key act as the local administrator.[/]")
    # Load the query model and open the catalog before listening, so the first search is as fast as the rest.
    cairn.query_cache.embed(cairn.embedder, "warm up")
    cairn.catalog.ping()
    console.print(f"cairn serving on http://{host}:{port} (API docs at /docs)")
    try:
        app = create_app(cairn, dev=dev, worker=worker)
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=5)
    finally:
        cairn.close()
