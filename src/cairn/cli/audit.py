"""`cairn audit verify|show`: check the vault's audit log for tampering, and read it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from cairn.audit import AuditHead, AuditLog, AuditRecord, AuditVerification
from cairn.cli.output import JsonOpt, console, err_console, errors_reported, print_json
from cairn.core import Cairn
from cairn.errors import InvalidRequest

app = typer.Typer(help="Verify and read the audit log kept in the vault.", no_args_is_help=True)

# Exit code of `cairn audit verify` when the log shows signs of tampering.
EXIT_TAMPERED = 6


@app.command()
def verify(
    head: Annotated[
        str | None,
        typer.Option(
            "--head",
            metavar="SEQ:HASH",
            help="A head noted earlier (from a previous verify); also detects deleted tail records and rewrites.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check every record's hash and link, in one pass over the log.

    Exits 0 when the log is intact, 6 when tampering is detected (each problem is printed).
    """
    with errors_reported(as_json), Cairn() as cairn:
        expected = AuditHead.parse(head) if head is not None else None
        log = AuditLog(cairn.vault.store)
        result = log.verify(expected_head=expected)
        where = log.describe()
    if as_json:
        print_json(result)
    else:
        _show_verification(result, where)
    if not result.ok:
        raise typer.Exit(EXIT_TAMPERED)


def _show_verification(result: AuditVerification, where: str) -> None:
    if not result.ok:
        found = f"{len(result.problems)} problem{'s' if len(result.problems) > 1 else ''}"
        err_console.print(
            f"Audit log at {escape(where)}: {result.records} records, [bold red]{found} — possible tampering[/]:"
        )
        for problem in result.problems:
            err_console.print(f"  [red]•[/] {escape(problem)}")
        return
    console.print(f"Audit log at {escape(where)}: {result.records} records, [green]chain intact[/].")
    if result.head_seq:
        # Only an intact log's head is worth keeping: it is the anchor for detecting later truncation.
        anchor = AuditHead(result.head_seq, result.head_hash)
        console.print(f"Head: {anchor}")
        console.print("Keep it outside the vault; check later with `cairn audit verify --head SEQ:HASH`.")


@app.command()
def show(
    last: Annotated[int, typer.Option("--last", "-n", help="How many of the newest records to show.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Show the newest records of the audit log, oldest first."""
    with errors_reported(as_json), Cairn() as cairn:
        if last < 1:
            raise InvalidRequest(f"--last {last}: give a number of records from 1")
        log = AuditLog(cairn.vault.store)
        newest = log.head().seq
        records = list(log.records(start=max(1, newest - last + 1)))
    if as_json:
        print_json({"records": [record.model_dump(mode="json") for record in records]})
    elif records:
        console.print(_table(records))
    else:
        console.print("The audit log is empty.")


def _table(records: list[AuditRecord]) -> Table:
    # Narrow enough for an 80-column terminal: the time to the second, collection and target in one column.
    table = Table(box=box.SIMPLE_HEAD)
    for name in ("seq", "at (UTC)", "actor", "action", "outcome", "docs", "on", "detail"):
        # Long ids fold onto more lines rather than being cut short: an audit view must hide nothing.
        table.add_column(name, no_wrap=name in ("seq", "at (UTC)", "outcome", "docs"), overflow="fold")
    colour = {"ok": "green", "denied": "yellow", "error": "red"}
    for record in records:
        table.add_row(
            str(record.seq),
            record.at[:19].replace("T", " "),
            escape(record.actor),
            escape(record.action),
            f"[{colour[record.outcome]}]{record.outcome}[/]",
            str(len(record.documents)) if record.documents else "",
            escape("/".join(part for part in (record.collection, record.target) if part)),
            escape(record.detail or ""),
        )
    return table
