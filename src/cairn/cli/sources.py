"""`cairn sources add|list|show|sync|rm`: folders and S3 prefixes kept in sync with a collection."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cairn.catalog import SourceRecord
from cairn.cli.engine import EngineOpt, RayAddressOpt, RayEmbeddersOpt, chosen_engine
from cairn.cli.output import CollectionOpt, JsonOpt, console, err_console, errors_reported, print_json
from cairn.core import Cairn
from cairn.errors import InvalidRequest
from cairn.sources import SyncProgress, SyncReport

if TYPE_CHECKING:
    from cairn.ray_engine import RayEngine

app = typer.Typer(
    help="Folders and S3 prefixes whose objects a collection keeps in sync, deletions included.",
    no_args_is_help=True,
)


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [part.strip() for part in value.split(",") if part.strip()]


def _when(stamp: float | None) -> str:
    return "" if stamp is None else datetime.fromtimestamp(stamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _settings(
    endpoint: str | None,
    region: str | None,
    path_style: bool,
    insecure: bool,
    ca_bundle: str | None,
    access_key_env: str | None,
    secret_key_env: str | None,
    acl_prefixes: str | None,
    ref: str | None = None,
    tags: bool = False,
) -> dict[str, object]:
    chosen: dict[str, object] = {}
    if ref:
        chosen["ref"] = ref
    if tags:
        chosen["tags"] = True
    for name, value in (
        ("endpoint", endpoint),
        ("region", region),
        ("ca_bundle", ca_bundle),
        ("access_key_env", access_key_env),
        ("secret_key_env", secret_key_env),
    ):
        if value:
            chosen[name] = value
    if path_style:
        chosen["path_style"] = True
    if insecure:
        chosen["verify_tls"] = False
    if acl_prefixes:
        try:
            chosen["acl_prefixes"] = json.loads(acl_prefixes)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f'--acl-prefixes takes JSON such as {{"hr/": ["hr"]}}: {exc}') from exc
    return chosen


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="A name for the source (letters, digits, _ . -).")],
    uri: Annotated[str, typer.Argument(help="s3://BUCKET/PREFIX, git+URL or git+PATH, or a local folder.")],
    collection: CollectionOpt = None,
    every: Annotated[str | None, typer.Option("--every", help="Sync on a schedule: 15m, 1h, 1d.")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Tenant of the source's documents.")] = None,
    allow: Annotated[str | None, typer.Option("--allow", help="Comma-separated ACL (default *).")] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="S3 endpoint URL.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="S3 region.")] = None,
    path_style: Annotated[bool, typer.Option("--path-style", help="Path-style S3 addressing.")] = False,
    insecure: Annotated[bool, typer.Option("--no-verify-tls", help="Do not verify the endpoint's TLS.")] = False,
    ca_bundle: Annotated[str | None, typer.Option("--ca-bundle", help="CA bundle for the endpoint.")] = None,
    access_key_env: Annotated[
        str | None, typer.Option("--access-key-env", help="Environment variable holding the access key.")
    ] = None,
    secret_key_env: Annotated[
        str | None, typer.Option("--secret-key-env", help="Environment variable holding the secret key.")
    ] = None,
    acl_prefixes: Annotated[
        str | None, typer.Option("--acl-prefixes", help='Key prefix → groups, as JSON: {"hr/": ["hr"]}.')
    ] = None,
    ref: Annotated[str | None, typer.Option("--ref", help="Git branch or tag (default HEAD).")] = None,
    tags: Annotated[bool, typer.Option("--tags", help="Read S3 object tags into metadata.")] = False,
    acl_tag: Annotated[
        str | None, typer.Option("--acl-tag", help="S3 tag whose value lists an object's groups.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a source; nothing is read until it is synced (cairn sources sync NAME)."""
    with errors_reported(as_json):
        settings = _settings(
            endpoint, region, path_style, insecure, ca_bundle, access_key_env, secret_key_env, acl_prefixes, ref, tags
        )
        if acl_tag:
            settings["acl_tag"] = acl_tag
        with Cairn() as cairn:
            record = cairn.add_source(
                name, uri, collection=collection, every=every, tenant=tenant, allow=_split(allow), settings=settings
            )
        if as_json:
            print_json(record)
        else:
            console.print(
                f"Added source {escape(record.name)} ({record.kind}) → collection {escape(record.collection)}."
            )


@app.command("set")
def set_(
    name: Annotated[str, typer.Argument()],
    every: Annotated[str | None, typer.Option("--every", help="New schedule (15m, 1h), or off.")] = None,
    allow: Annotated[str | None, typer.Option("--allow", help="New comma-separated ACL.")] = None,
    acl_prefixes: Annotated[
        str | None, typer.Option("--acl-prefixes", help="New key prefix → groups map, as JSON; {} for none.")
    ] = None,
    ref: Annotated[str | None, typer.Option("--ref", help="Git branch or tag.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a source's schedule, ACL or ACL map; the next sync applies it (nothing is embedded again)."""
    with errors_reported(as_json):
        settings: dict[str, object] = {}
        if acl_prefixes is not None:
            mapped = _settings(None, None, False, False, None, None, None, acl_prefixes).get("acl_prefixes")
            settings["acl_prefixes"] = mapped or None
        if ref is not None:
            settings["ref"] = ref
        with Cairn() as cairn:
            record = cairn.change_source(name, every=every, allow=_split(allow), settings=settings or None)
        if as_json:
            print_json(record)
        else:
            console.print(f"Changed source {escape(record.name)}; the next sync applies it.")


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List sources, with their last sync."""
    with errors_reported(as_json):
        with Cairn() as cairn:
            found = cairn.sources()
        if as_json:
            print_json({"sources": [s.model_dump(mode="json") for s in found]})
            return
        table = Table("name", "kind", "uri", "collection", "every", "last sync")
        for source in found:
            table.add_row(
                escape(source.name),
                source.kind,
                escape(source.uri),
                escape(source.collection),
                f"{source.every_s:g} s" if source.every_s else "",
                _summary(source),
            )
        console.print(table)


@app.command()
def show(name: Annotated[str, typer.Argument()], as_json: JsonOpt = False) -> None:
    """One source's settings and last sync report."""
    with errors_reported(as_json):
        with Cairn() as cairn:
            source = cairn.source_info(name)
        if as_json:
            print_json(source)
            return
        console.print(
            f"[bold]{escape(source.name)}[/] {source.kind} {escape(source.uri)} → {escape(source.collection)}"
        )
        console.print(f"tenant {escape(source.tenant)}, allowed {escape(', '.join(source.allowed))}")
        if source.settings:
            console.print(f"settings {escape(json.dumps(source.settings))}")
        console.print(f"last sync: {escape(_summary(source)) or 'never'}")
        if source.next_sync_at:
            console.print(f"next sync: {_when(source.next_sync_at)}")


@app.command()
def sync(
    name: Annotated[str, typer.Argument()],
    confirm_deletions: Annotated[
        bool, typer.Option("--confirm-deletions", help="Remove documents even past the deletion guard.")
    ] = False,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    ray_embedders: RayEmbeddersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sync a source now: fetch and ingest what changed, take down what is gone (guarded)."""
    with errors_reported(as_json):
        with Cairn() as cairn, chosen_engine(engine, ray_address, ray_embedders) as chosen:
            if as_json:
                report = cairn.sync_source(name, confirm_deletions=confirm_deletions, engine=chosen)
            else:
                report = _sync_with_progress(cairn, name, confirm_deletions, chosen)
        if as_json:
            print_json(report)
            return
        _print_report(report)
        if report.held_back or report.failed:
            raise typer.Exit(1)


@app.command()
def rm(
    name: Annotated[str, typer.Argument()],
    take_down: Annotated[
        bool, typer.Option("--take-down", help="Also take the source's documents out of search.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Forget a source (its documents stay unless --take-down)."""
    with errors_reported(as_json):
        with Cairn() as cairn:
            removed = cairn.remove_source(name, take_down=take_down)
        if as_json:
            print_json({"removed": name, "taken_down": removed})
        else:
            console.print(f"Removed source {escape(name)}; {removed} documents taken down.")


def _sync_with_progress(cairn: Cairn, name: str, confirm: bool, engine: RayEngine | None) -> SyncReport:
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err_console
    ) as bar:
        task = bar.add_task("listing", total=None)

        def step(update: SyncProgress) -> None:
            bar.update(task, description=update.phase, completed=update.done, total=update.total or None)

        return cairn.sync_source(name, confirm_deletions=confirm, progress=step, engine=engine)


def _print_report(report: SyncReport) -> None:
    console.print(
        f"{escape(report.source)}: {report.listed} listed, {report.unchanged} unchanged, {report.ingested} ingested, "
        f"{report.removed} removed, {report.held_back} held back, {len(report.failed)} failed "
        f"in {report.seconds:.1f} s"
    )
    for failure in report.failed:
        console.print(f"  [red]failed[/] {escape(failure.path)}: {escape(failure.error)}")
    if report.message:
        console.print(f"[yellow]{escape(report.message)}[/]")


def _summary(source: SourceRecord) -> str:
    last = source.last_sync
    if not last:
        return ""
    held = f", {last.get('held_back')} held back" if last.get("held_back") else ""
    failed = last.get("failed")
    return (
        f"{_when(float(str(last.get('started_at', 0))))}: {last.get('listed', 0)} listed, {last.get('ingested', 0)} "
        f"ingested, {last.get('removed', 0)} removed{held}, {len(failed) if isinstance(failed, list) else 0} failed"
        + ("" if last.get("complete") else " (listing failed)")
    )
