"""Root commands: ingest, search, ask, demo; sub-apps for collections and documents."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cairn.cli import audit, bench, catalog, collections, docs, keys, maintenance, mcp, serve, sources, stack, worker
from cairn.cli.engine import EngineOpt, RayAddressOpt, RayEmbeddersOpt, chosen_engine
from cairn.cli.eval import evaluate
from cairn.cli.output import CollectionOpt, JsonOpt, console, err_console, errors_reported, print_json, render
from cairn.core import Cairn
from cairn.index.milvus import SearchMode
from cairn.ingest import IngestProgress
from cairn.models import Answer, IngestReport, SearchResult
from cairn.parse import SUPPORTED_FORMATS

if TYPE_CHECKING:
    from cairn.ray_engine import RayEngine

app = typer.Typer(
    name="cairn",
    help="Secure, fast retrieval-augmented generation over your organisation's documents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Use a Milvus server even though it still accepts root:Milvus or has authentication off.",
        ),
    ] = False,
) -> None:
    if insecure:
        os.environ["CAIRN_MILVUS_INSECURE"] = "1"


# Exit code of `cairn ingest` when the run finished but some files could not be ingested.
EXIT_SOME_FAILED = 3


def _cairn() -> Cairn:
    return Cairn()


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to ingest.")],
    collection: CollectionOpt = None,
    sync: Annotated[
        bool,
        typer.Option(
            "--sync",
            help="Remove documents of folder ingests whose files are not under PATHS (not uploads or sources).",
        ),
    ] = False,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Tenant of the documents (default: default).")] = None,
    allow: Annotated[
        str | None, typer.Option("--allow", help="Who may see them: groups, user:NAME, key:ID, or * (default).")
    ] = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    ray_embedders: RayEmbeddersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest files and folders. Unchanged files are skipped; changed files replace their old version.

    Exits 0 when every file was ingested, unchanged or skipped (a kind cairn does not index), 3 when some
    files failed (listed in the report with the reason).
    """
    with errors_reported(as_json), _cairn() as cairn, chosen_engine(engine, ray_address, ray_embedders) as chosen:
        allowed = allow.split(",") if allow is not None else None
        report = _ingest(
            cairn, paths, collection, sync, show_progress=not as_json, tenant=tenant, allow=allowed, engine=chosen
        )
        render(as_json, report, lambda: _show_ingest(report))
    if report.failed:
        raise typer.Exit(EXIT_SOME_FAILED)


def _ingest(
    cairn: Cairn,
    paths: list[Path],
    collection: str | None,
    sync: bool,
    *,
    show_progress: bool,
    tenant: str | None = None,
    allow: list[str] | None = None,
    engine: RayEngine | None = None,
) -> IngestReport:
    if not show_progress:
        return cairn.ingest(paths, collection=collection, sync=sync, tenant=tenant, allow=allow, engine=engine)
    columns = (
        TextColumn("[bold]ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("discovering files", total=None)

        def advance(step: IngestProgress) -> None:
            bar.update(task, total=step.total, completed=step.done, description=escape(Path(step.path).name))

        return cairn.ingest(
            paths, collection=collection, sync=sync, progress=advance, tenant=tenant, allow=allow, engine=engine
        )


def _show_ingest(report: IngestReport) -> None:
    console.print(
        f"[bold]{report.collection}[/]: {report.files} files — [green]{report.ingested} ingested[/], "
        f"{report.unchanged} unchanged, {report.removed} removed, {len(report.skipped)} skipped, "
        f"[{'red' if report.failed else 'green'}]{len(report.failed)} failed[/]; "
        f"{report.chunks} chunks, {report.tokens} tokens"
    )
    if report.formats:
        console.print("formats: " + ", ".join(f"{name} {count}" for name, count in sorted(report.formats.items())))
    if report.seconds:
        console.print("seconds: " + ", ".join(f"{stage} {value:.2f}" for stage, value in report.seconds.items()))
    for title, files in (("Skipped", report.skipped), ("Failed", report.failed)):
        if files:
            table = Table("file", "why", title=f"{title} files", title_justify="left")
            for entry in files:
                table.add_row(escape(entry.path), escape(entry.error))
            console.print(table)
    if report.warnings:
        table = Table("file", "what was left out or repaired", title="Ingested with warnings", title_justify="left")
        for warning in report.warnings:
            table.add_row(escape(warning.path), escape(warning.message))
        console.print(table)
    if report.skipped:
        console.print(f"[dim]cairn indexes {escape(SUPPORTED_FORMATS)}.[/]")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    collection: CollectionOpt = None,
    k: Annotated[int, typer.Option("-k", help="How many hits.")] = 10,
    mode: Annotated[SearchMode, typer.Option("--mode", help="hybrid, dense or keyword.")] = "hybrid",
    where: Annotated[
        str | None,
        typer.Option("--filter", help='Narrow the search: mime = "application/pdf" and metadata.status = "open".'),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the passages that best match QUERY."""
    with errors_reported(as_json):
        result = _cairn().search(query, collection=collection, k=k, mode=mode, filter=where)
        render(as_json, result, lambda: _show_hits(result))


def _show_hits(result: SearchResult) -> None:
    if not result.hits:
        console.print("No matching passages.")
        return
    for rank, hit in enumerate(result.hits, start=1):
        title = f"{rank}. {escape(hit.source)}  [dim]{escape(hit.location.label)}  score {hit.score:.4f}[/]"
        console.print(Panel(escape(hit.text), title=title, title_align="left"))


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    collection: CollectionOpt = None,
    k: Annotated[int, typer.Option("-k", help="Passages to retrieve.")] = 8,
    rerank: Annotated[
        bool, typer.Option("--rerank", help="Rerank with the cross-encoder (CAIRN_RERANK_MODEL).")
    ] = False,
    diversify: Annotated[bool, typer.Option("--diversify", help="Choose passages by MMR (fewer near-copies).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Answer QUESTION from the documents, citing each source.

    With CAIRN_LLM_BASE_URL set, an OpenAI-compatible LLM writes the answer and it is printed as it is
    generated; otherwise the answer quotes the best sentences. Each citation shows its support (0-1): how
    well the passage backs the sentences that cite it.
    """
    with errors_reported(as_json):
        stream = _cairn().ask_stream(question, collection=collection, k=k, rerank=rerank, diversify=diversify)
        if as_json:
            print_json(stream.result())
            return
        console.print(f"[bold]{escape(question)}[/]")
        for piece in stream:
            console.print(escape(piece), end="", highlight=False, soft_wrap=True)
        console.print()
        _show_citations(stream.result())


def show_answer(question: str, answer: Answer) -> None:
    console.print(Panel(escape(answer.answer), title=f"[bold]{escape(question)}", title_align="left"))
    _show_citations(answer)


def _show_citations(answer: Answer) -> None:
    for number, citation in enumerate(answer.citations, start=1):
        verdict = "[green]supported[/]" if citation.supported else "[red]NOT supported[/]"
        console.print(
            f"  [bold][{number}][/] {escape(citation.source)} [dim]{escape(citation.location.label)}[/]  "
            f"support {citation.support:.2f} {verdict}"
        )
    for warning in answer.warnings:
        err_console.print(f"[yellow]note:[/] {escape(warning)}")


@app.command()
def demo(
    as_json: JsonOpt = False,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the demo's CAIRN_HOME and print where it is.")] = False,
) -> None:
    """Ingest the bundled sample knowledge base into a scratch home and answer its sample questions."""
    from cairn.demo import CORPUS_DIR, QUESTIONS
    from cairn.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="cairn-demo-"))
    try:
        with errors_reported(as_json), Cairn(Settings(home=home)) as cairn:
            report = _ingest(cairn, [CORPUS_DIR], "demo", False, show_progress=not as_json)
            answers = [(q, cairn.ask(q, collection="demo")) for q in QUESTIONS]
            if as_json:
                print_json(
                    {
                        "ingest": report.model_dump(mode="json"),
                        "answers": [{"question": q, **a.model_dump(mode="json")} for q, a in answers],
                    }
                )
            else:
                _show_ingest(report)
                for question, answer in answers:
                    show_answer(question, answer)
                if keep:
                    console.print(f"Demo data kept in {home} (CAIRN_HOME={home} cairn search ... -c demo)")
    finally:
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


app.add_typer(collections.app, name="collections")
app.add_typer(docs.app, name="docs")
app.add_typer(bench.app, name="bench")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.add_typer(stack.app, name="stack")
app.add_typer(catalog.app, name="catalog")
app.add_typer(sources.app, name="sources")
maintenance.register(app)
app.command()(serve.serve)
app.command()(worker.worker)
app.command()(mcp.mcp)
app.command("eval")(evaluate)


def main() -> None:
    app()
