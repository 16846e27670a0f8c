"""`cairn stack up|down|status`: the local server stack (Milvus standalone on SeaweedFS S3, on loopback)."""

from __future__ import annotations

from typing import Annotated

import typer

from cairn.cli.output import JsonOpt, console, err_console, errors_reported, print_json
from cairn.settings import Settings
from cairn.stack import LocalStack

app = typer.Typer(help="The local server stack: Milvus standalone persisting to an S3 server, on 127.0.0.1.")


def _stack() -> LocalStack:
    return LocalStack(Settings().home)


@app.command()
def up(
    tls: Annotated[bool, typer.Option("--tls", help="Serve Milvus over TLS with a CA made for this stack.")] = False,
) -> None:
    """Start the stack (if it is not running) and print its settings as `export` lines.

    Use it as `eval "$(cairn stack up)"`: later cairn commands in that shell use the stack's Milvus server,
    keep the vault in its S3 bucket and share its PostgreSQL catalog.
    """
    with errors_reported(False):
        stack = _stack()
        err_console.print(f"[dim]starting the stack under {stack.root} …[/]")
        exports = stack.up(tls=tls)
        err_console.print(
            "[green]stack running[/]: Milvus at "
            f"{exports['CAIRN_MILVUS_URI']}, S3 at {exports['AWS_ENDPOINT_URL']}, the PostgreSQL catalog at "
            f"127.0.0.1:{exports['CAIRN_CATALOG_URL'].rsplit(':', 1)[-1].split('/')[0]} (settings on stdout)"
        )
        network = stack.network_description()
        if network.startswith("host network"):
            err_console.print(f"[yellow]warning[/]: {network}")
        typer.echo(stack.export_lines(exports), nl=False)


@app.command()
def down(
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the stack's data and credentials.")] = False,
) -> None:
    """Stop Milvus, the S3 server and PostgreSQL. Their data stays for the next `up` unless --purge."""
    with errors_reported(False):
        _stack().down(purge=purge)
        console.print("stack stopped" + (" and its data deleted" if purge else ""))


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Whether the stack's processes run, where, and how many objects Milvus keeps in S3."""
    with errors_reported(as_json):
        found = _stack().status()
        if as_json:
            print_json(found.as_dict())
            return
        for name, value in found.as_dict().items():
            console.print(f"{name:16} {value}")
        if not (found.s3_running and found.milvus_healthy and found.postgres_running):
            raise typer.Exit(1)
