"""`cairn rebuild`, `cairn reindex` and `cairn verify`: keep the index true to the vault."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cairn.cli.engine import EngineOpt, RayAddressOpt, RayEmbeddersOpt, chosen_engine
from cairn.cli.output import CollectionOpt, JsonOpt, console, errors_reported, print_json, render
from cairn.core import Cairn
from cairn.maintenance import ORPHAN_GRACE_S, VerifyReport

# Exit code of `cairn verify` when problems remain (found without --repair, or not repairable).
EXIT_NOT_CLEAN = 5


def rebuild(
    collection: CollectionOpt = None,
    catalog: Annotated[
        bool,
        typer.Option("--catalog", help="First recreate lost collections in the catalog from the vault's records."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-create a collection's Milvus index from the vault (chunks and vectors), without re-embedding.

    With --catalog, collections the catalog lacks are first recreated from the vault's version records
    and events (a lost catalog database), and each of them is rebuilt.
    """
    with errors_reported(as_json), Cairn() as cairn:
        restored = cairn.restore_catalog() if catalog else []
        names = [collection] if collection or not restored else restored
        results = {name or cairn.settings.default_collection: cairn.rebuild(collection=name) for name in names}
        if as_json:
            single = next(iter(results.items()))
            print_json(
                {"restored": restored, "collections": results}
                if catalog
                else {"collection": single[0], "rows": single[1]}
            )
            return
        for name in restored:
            console.print(f"Restored [bold]{escape(name)}[/] in the catalog from the vault's records.")
        for name, rows in results.items():
            console.print(f"Rebuilt [bold]{escape(name)}[/]: {rows} rows from the vault.")


def reindex(
    model: Annotated[str, typer.Option("--model", "-m", help="Embedding model: a name or a local model folder.")],
    collection: CollectionOpt = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    ray_embedders: RayEmbeddersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-embed a collection with MODEL into a new index; searches switch to it atomically when it is done."""
    with errors_reported(as_json), Cairn() as cairn, chosen_engine(engine, ray_address, ray_embedders) as chosen:
        report = cairn.reindex(model, collection=collection, engine=chosen)
        render(
            as_json,
            report,
            lambda: console.print(
                f"Reindexed [bold]{escape(report.collection)}[/] with {escape(report.embed_model)} "
                f"(was {escape(report.previous_model)}): {report.documents} documents, {report.chunks} chunks, "
                f"{report.embedded} embedded, {report.seconds:.1f} s; generation {report.generation}."
            ),
        )


def verify(
    collection: CollectionOpt = None,
    repair: Annotated[
        bool,
        typer.Option("--repair", help="Insert missing rows, delete orphan rows and orphan vault objects."),
    ] = False,
    orphan_grace_s: Annotated[
        float,
        typer.Option(
            "--orphan-grace-s",
            min=0,
            help="Vault objects no version references count as orphans only once this many seconds old.",
        ),
    ] = ORPHAN_GRACE_S,
    as_json: JsonOpt = False,
) -> None:
    """Reconcile the vault and the index: missing rows, orphan rows, corrupt objects, orphan vault objects.

    Orphan vault objects (original bytes, chunk files, version records that no version in the catalog
    references, left by a writer killed before publishing) are deleted by --repair unless retention keeps
    them (reported as kept). Exits 0 when clean (or fully repaired), 5 when problems remain.
    """
    with errors_reported(as_json), Cairn() as cairn:
        report = cairn.verify(collection=collection, repair=repair, orphan_grace_s=orphan_grace_s)
        render(as_json, report, lambda: _show(report))
    if not report.clean:
        raise typer.Exit(EXIT_NOT_CLEAN)


def _show(report: VerifyReport) -> None:
    state = "[green]clean[/]" if report.clean else "[red]problems found[/]"
    console.print(
        f"[bold]{escape(report.collection)}[/]: {report.documents} documents, {report.chunks} chunks in the vault, "
        f"{report.rows} rows in the index — {state}"
    )
    if report.issues:
        table = Table("problem", "document", "version", "rows", "repaired", "detail")
        for issue in report.issues:
            table.add_row(
                issue.kind,
                escape(issue.source or issue.doc_id or issue.key or ""),
                str(issue.version or ""),
                str(issue.rows or ""),
                "yes" if issue.repaired else ("kept" if issue.kept else "no"),
                escape(issue.detail),
            )
        console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(rebuild)
    app.command()(reindex)
    app.command()(verify)
