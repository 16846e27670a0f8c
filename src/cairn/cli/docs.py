"""`cairn docs list|versions|get|rm|acl`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cairn.cli.output import CollectionOpt, JsonOpt, console, errors_reported, print_json
from cairn.core import Cairn

app = typer.Typer(help="List documents and their versions, fetch exact bytes, remove.", no_args_is_help=True)


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
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete every stored version (refused under retention).")
    ] = False,
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove documents from search; their versions stay in the vault unless --purge."""
    with errors_reported(as_json):
        cairn = Cairn()
        if purge:
            removed = cairn.purge_documents(refs, collection=collection)
        else:
            removed = cairn.remove_documents(refs, collection=collection)
        if as_json:
            print_json({"removed": [d.model_dump(mode="json") for d in removed]})
        else:
            for doc in removed:
                what = "Removed and purged" if purge else "Removed"
                console.print(f"{what} {escape(doc.source)} ({doc.doc_id}).")


@app.command()
def versions(
    ref: Annotated[str, typer.Argument(help="Document id or source path.")],
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List every version the vault keeps of a document (also after it was removed)."""
    with errors_reported(as_json):
        info = Cairn().document(ref, collection=collection)
        if as_json:
            print_json(info)
            return
        table = Table("version", "live", "type", "bytes", "chunks", "sha256", "added", title=escape(info.source))
        for v in info.versions:
            added = datetime.fromtimestamp(v.created_at, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            live = "yes" if v.version == info.version else ""
            table.add_row(str(v.version), live, v.mime, str(v.size), str(v.chunks), v.sha256[:16], added)
        console.print(table)


@app.command()
def get(
    ref: Annotated[str, typer.Argument(help="Document id or source path.")],
    version: Annotated[int | None, typer.Option("--version", "-v", help="Version number (default: live).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of to standard output.")] = None,
    collection: CollectionOpt = None,
) -> None:
    """Write the exact bytes of a document version: what a citation's version came from."""
    with errors_reported(False):
        data = Cairn().document_bytes(ref, version=version, collection=collection)
        if out is not None:
            out.write_bytes(data)
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()


@app.command()
def acl(
    refs: Annotated[list[str], typer.Argument(help="Document ids or source paths.")],
    allow: Annotated[str, typer.Option("--allow", help="Groups, user:NAME, key:ID, or * for everyone.")],
    tenant: Annotated[str | None, typer.Option("--tenant", help="Move them to this tenant.")] = None,
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change who may see documents; the next request already obeys it."""
    with errors_reported(as_json):
        changed = Cairn().set_access(refs, allow=allow.split(","), tenant=tenant, collection=collection)
        if as_json:
            print_json({"documents": [d.model_dump(mode="json") for d in changed]})
        else:
            for doc in changed:
                console.print(
                    f"{escape(doc.source)}: tenant {escape(doc.tenant)}, allowed {escape(', '.join(doc.allowed))}"
                )
