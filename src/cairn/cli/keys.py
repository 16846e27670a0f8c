"""`cairn keys create|list|revoke`: API keys for the HTTP service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cairn.auth import ROLES, parse_duration
from cairn.cli.output import JsonOpt, console, errors_reported, print_json
from cairn.core import Cairn
from cairn.errors import InvalidRequest

app = typer.Typer(help="Create, list and revoke API keys (stored hashed in the vault).", no_args_is_help=True)


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [part.strip() for part in value.split(",") if part.strip()]


def _when(stamp: float | None) -> str:
    return "" if stamp is None else datetime.fromtimestamp(stamp, tz=UTC).strftime("%Y-%m-%d %H:%MZ")


@app.command()
def create(
    role: Annotated[str, typer.Option("--role", help="reader, editor or admin.")],
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant whose documents the key may see.")],
    user: Annotated[str | None, typer.Option("--user", help="A user name, for ACL entries user:NAME.")] = None,
    groups: Annotated[str | None, typer.Option("--groups", help="Comma-separated groups, for ACLs.")] = None,
    collections: Annotated[str | None, typer.Option("--collections", help="Comma-separated grants.")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="Lifetime such as 30d, 12h.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key and print it once; only its hash is kept."""
    with errors_reported(as_json):
        if role not in ROLES:
            raise InvalidRequest(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
        token, record = Cairn().create_key(
            role=role,
            tenant=tenant,
            user=user,
            groups=_split(groups),
            collections=_split(collections),
            expires_in=parse_duration(expires) if expires else None,
        )
        if as_json:
            print_json({"key": token, "key_id": record.key_id, "role": record.role, "tenant": record.tenant})
        else:
            console.print(f"{token}\n[dim]key id {record.key_id}; shown once, store it now.[/]")


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List keys (never their secrets)."""
    with errors_reported(as_json):
        records = Cairn().list_keys()
        if as_json:
            print_json({"keys": [r.model_dump(mode="json", exclude={"digest"}) for r in records]})
            return
        table = Table("key id", "role", "tenant", "user", "groups", "collections", "expires", "revoked")
        for r in records:
            table.add_row(
                r.key_id,
                r.role,
                escape(r.tenant),
                escape(r.user or ""),
                escape(",".join(r.groups)),
                escape(",".join(r.collections) if r.collections is not None else "all"),
                _when(r.expires_at),
                _when(r.revoked_at),
            )
        console.print(table)


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (from `cairn keys list`).")], as_json: JsonOpt = False
) -> None:
    """Revoke a key; it fails from the next request on."""
    with errors_reported(as_json):
        record = Cairn().revoke_key(key_id)
        if as_json:
            print_json({"revoked": record.key_id})
        else:
            console.print(f"Revoked {record.key_id}.")
