"""`cairn catalog`: the database every cairn process shares (SQLite in CAIRN_HOME, or CAIRN_CATALOG_URL)."""

from __future__ import annotations

import typer

from cairn.cli.output import JsonOpt, console, errors_reported, print_json
from cairn.settings import Settings

app = typer.Typer(help="The catalog database: its schema version and migrations.", no_args_is_help=True)


@app.command()
def upgrade(as_json: JsonOpt = False) -> None:
    """Apply the catalog's schema migrations now (every process also applies them when it starts)."""
    from cairn.catalog import SqlCatalog
    from cairn.catalog.engine import current_revision

    with errors_reported(as_json):
        catalog = SqlCatalog(Settings().catalog_database)
        try:
            revision = current_revision(catalog.engine)
            where = catalog.describe()
        finally:
            catalog.close()
        if as_json:
            print_json({"catalog": where, "revision": revision})
        else:
            console.print(f"catalog {where} is at schema revision {revision}")


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Where the catalog is, its schema revision and the newest this cairn knows (nothing is changed)."""
    from cairn.catalog import SqlCatalog
    from cairn.catalog.engine import current_revision, head_revision

    with errors_reported(as_json):
        catalog = SqlCatalog(Settings().catalog_database, migrate_on_open=False)
        try:
            found: dict[str, object] = {"catalog": catalog.describe(), "revision": current_revision(catalog.engine)}
        finally:
            catalog.close()
        found["newest"] = head_revision()
        if as_json:
            print_json(found)
        else:
            for name, value in found.items():
                console.print(f"{name:9} {value}")
        if found["revision"] != found["newest"]:
            raise typer.Exit(1)
