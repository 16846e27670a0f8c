"""How the CLI shows results: JSON for programs, Rich tables and panels for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape

from cairn.errors import CairnError, InvalidRequest, NotFound

__all__ = ["CollectionOpt", "JsonOpt", "console", "err_console", "errors_reported", "fail", "print_json", "render"]

CollectionOpt = Annotated[str | None, typer.Option("--collection", "-c", help="Collection (default: 'default').")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

console = Console()
err_console = Console(stderr=True)


def print_json(payload: BaseModel | dict[str, object] | list[object]) -> None:
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def fail(message: str, *, as_json: bool, code: int = 1) -> NoReturn:
    if as_json:
        print_json({"error": message})
    else:
        err_console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


_EXIT_CODES: dict[type[CairnError], int] = {InvalidRequest: 2, NotFound: 4}


@contextmanager
def errors_reported(as_json: bool) -> Iterator[None]:
    """Turn cairn's errors into one clear line (or JSON object) and an exit code."""
    try:
        yield
    except CairnError as exc:
        code = next((c for t, c in _EXIT_CODES.items() if isinstance(exc, t)), 1)
        fail(str(exc), as_json=as_json, code=code)


def render(as_json: bool, payload: BaseModel, human: Callable[[], None]) -> None:
    if as_json:
        print_json(payload)
    else:
        human()
