"""`cairn docs list|rm`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cairn.cli.output import CollectionOpt, JsonOpt, console, errors_reported, print_json
from cairn.core import Cairn

app = typer.Typer(help="List and remove documents.", no_args_is_help=True)


@app.command("list")
def list_(collection: CollectionOpt = None, as_json: JsonOpt = False) -> None:
    """List the live documents of a collection."""
    with errors_reported(as_json):
        documents = Cairn().documents(collection=collection)
        if as_json:
            print_json({"documents": [d.model_dump(mode="json") for d in documents]})
            return
        table = Table("doc id", "source", "type", "version", "chunks")
        for doc in documents:
            table.add_row(doc.doc_id, escape(doc.source), doc.mime, str(doc.version), str(doc.chunks))
        console.print(table)


@app.command("rm")
def rm(
    refs: Annotated[list[str], typer.Argument(help="Document ids or source paths.")],
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove documents from a collection's index (their versions stay in the vault)."""
    with errors_reported(as_json):
        removed = Cairn().remove_documents(refs, collection=collection)
        if as_json:
            print_json({"removed": [d.model_dump(mode="json") for d in removed]})
        else:
            for doc in removed:
                console.print(f"Removed {escape(doc.source)} ({doc.doc_id}).")
