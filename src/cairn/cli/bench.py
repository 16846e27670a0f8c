"""`cairn bench ...`: measurements that print JSON (and save it with --out)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cairn.cli.output import print_json

app = typer.Typer(help="Benchmarks: print JSON; record results in docs/benchmarks/.", no_args_is_help=True)


@app.command()
def ingest(
    corpus: Annotated[list[Path], typer.Argument(help="Files and folders to ingest.")],
    batch_size: Annotated[int, typer.Option(help="Embedding batch size, for both runs.")] = 32,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
) -> None:
    """Ingest CORPUS into a scratch home; compare chunks/s with the raw embedder on the same chunks."""
    from cairn.bench.ingest import bench_ingest

    _emit(bench_ingest(corpus, batch_size=batch_size), out)


@app.command()
def parse(
    corpus: Annotated[list[Path], typer.Argument(help="Files and folders to parse.")],
    workers: Annotated[list[int], typer.Option(min=1, help="Worker counts to compare (repeat the option).")] = [1, 2],  # noqa: B006
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
) -> None:
    """Parse CORPUS with each number of parser processes; report files/s and the speed-up over one."""
    from cairn.bench.parse import bench_parse

    _emit(bench_parse(corpus, workers=workers), out)


def _emit(result: dict[str, Any], out: Path | None) -> None:
    print_json(result)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
