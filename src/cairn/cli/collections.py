"""`cairn collections list|info|drop|retention`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cairn.cli.output import JsonOpt, console, errors_reported, print_json
from cairn.core import Cairn
from cairn.errors import InvalidRequest
from cairn.models import CollectionInfo

app = typer.Typer(help="List, inspect and drop collections.", no_args_is_help=True)


def _table(infos: list[CollectionInfo]) -> Table:
    table = Table("collection", "documents", "chunks", "index rows", "model", "engine")
    for info in infos:
        table.add_row(
            escape(info.name),
            str(info.documents),
            str(info.chunks),
            str(info.rows),
            escape(info.embed_model),
            info.engine,
        )
    return table


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List collections."""
    with errors_reported(as_json):
        infos = Cairn().collections()
        if as_json:
            print_json({"collections": [i.model_dump(mode="json") for i in infos]})
        elif infos:
            console.print(_table(infos))
        else:
            console.print("No collections yet; `cairn ingest PATH` creates 'default'.")


@app.command()
def info(name: Annotated[str, typer.Argument(help="Collection name.")], as_json: JsonOpt = False) -> None:
    """Show one collection's counts, model, engine and the engine features in use."""
    with errors_reported(as_json):
        found = Cairn().collection_info(name)
        if as_json:
            print_json(found)
        else:
            console.print(_table([found]))
            console.print(f"engine version   {escape(found.engine_version)}")
            console.print(f"active features  {escape(', '.join(found.features) or 'none')}")
            if "bm25" not in found.features:
                console.print("[yellow]no BM25 on this engine: keyword and hybrid searches run as dense[/]")
            elif "heading_index" not in found.features:
                console.print(
                    "[yellow]made before the heading index: hybrid search does not weigh titles and section "
                    "names here; `cairn reindex` rebuilds it with one[/]"
                )


@app.command()
def drop(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a collection's index and manifest (original document bytes stay in the vault)."""
    if not yes and not as_json:
        typer.confirm(f"Drop collection {name!r}?", abort=True)
    with errors_reported(as_json):
        Cairn().drop_collection(name)
        if as_json:
            print_json({"dropped": name})
        else:
            console.print(f"Dropped collection {escape(name)}.")


@app.command()
def retention(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    mode: Annotated[
        str | None, typer.Option("--mode", help="GOVERNANCE (bypassable by privileged accounts) or COMPLIANCE.")
    ] = None,
    days: Annotated[int, typer.Option("--days", help="Days each version stays locked.")] = 0,
    off: Annotated[bool, typer.Option("--off", help="Lock no new versions (existing locks stay).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Keep a collection's versions under S3 Object Lock retention (needs a bucket with Object Lock)."""
    with errors_reported(as_json):
        if off == (mode is not None):
            raise InvalidRequest("give either --mode and --days, or --off")
        Cairn().set_retention(None if off else mode, days, collection=name)
        state = "off" if off else f"{(mode or '').upper()} for {days} days"
        if as_json:
            print_json({"collection": name, "retention": None if off else {"mode": (mode or "").upper(), "days": days}})
        else:
            console.print(f"Retention of {escape(name)}: {state}.")
