"""`cairn eval DATASET`: retrieval quality of each search mode on a BEIR-format evaluation set, or,
with ``--answers``, the quality of the answers `Cairn.ask` gives to its questions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cairn.cli.output import JsonOpt, console, err_console, errors_reported, fail, print_json

__all__ = ["evaluate"]


def evaluate(
    dataset: Annotated[
        Path, typer.Argument(help="A BEIR-format folder: corpus.jsonl or corpus/, queries.jsonl, qrels/.")
    ],
    modes: Annotated[
        str, typer.Option("--modes", help="Comma-separated: keyword, dense, hybrid, rerank.")
    ] = "keyword,dense,hybrid,rerank",
    split: Annotated[
        str | None, typer.Option("--split", help="The qrels file qrels/SPLIT.tsv (default: test).")
    ] = None,
    half: Annotated[
        str | None,
        typer.Option(
            "--half",
            help="Score only the 'tune' or the 'held-out' half of the queries (fixed by a hash of each query id).",
        ),
    ] = None,
    queries: Annotated[int | None, typer.Option("--queries", min=1, help="Evaluate only the first N queries.")] = None,
    documents: Annotated[
        int | None, typer.Option("--docs", min=1, help="Cap the corpus at N documents (relevant ones kept).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the JSON here.")] = None,
    answers: Annotated[
        bool,
        typer.Option(
            "--answers",
            help="Evaluate answers instead of rankings: ask each question and compare with answers.jsonl.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Ingest DATASET into a scratch home and report nDCG@10, recall@10/100 and MRR@10 per search mode.

    Metrics are at document level: a document ranks where its best chunk does. With --answers, every
    question that has a gold answer passage is asked, and the report gives how often the answer
    quotes the gold passage, echoes the question or cuts a sentence, and how many citations are
    supported.
    """
    from cairn.eval.dataset import HALVES, load_dataset
    from cairn.eval.runner import EVAL_MODES, run_eval

    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in EVAL_MODES]
    if unknown or not chosen:
        fail(
            f"unknown mode(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(EVAL_MODES)}",
            as_json=as_json,
            code=2,
        )
    if half is not None and half not in HALVES:
        fail(f"unknown half {half!r}; choose from {', '.join(HALVES)}", as_json=as_json, code=2)
    with errors_reported(as_json):
        data = load_dataset(dataset, split=split)
        if queries is not None or documents is not None:
            data = data.subset(queries=queries, documents=documents)
        if answers:
            result = _answers(data if half is None else data.half(half), as_json)
        else:
            result = run_eval(data, modes=chosen, half=half) if as_json else _with_progress(data, chosen, half)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    if as_json:
        print_json(result)
    elif answers:
        show_answers(result)
    else:
        show_eval(result)


def _answers(data: Any, as_json: bool) -> dict[str, Any]:
    from cairn.errors import InvalidRequest
    from cairn.eval.answers import run_answer_eval

    if not data.answers:
        raise InvalidRequest(
            f"{data.name} has no gold answers: --answers needs an answers.jsonl beside queries.jsonl "
            '({"_id": query id, "doc": corpus id, "text": gold answer passage} per line)'
        )
    if as_json:
        return run_answer_eval(data)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(f"ingest {data.corpus_size} documents", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, description="ask", completed=done, total=total)

        return run_answer_eval(data, progress=advance)


def show_answers(result: dict[str, Any]) -> None:
    """The answer checks as one table, then the questions that missed, with their answers."""
    rates = result["answers"]
    table = Table(
        "gold quoted", "question echoed", "cut sentences", "no answer", "citations supported", "ms/question",
        title=f"{escape(result['dataset'])}: {result['questions']} questions, {result['corpus_documents']} documents",
        title_justify="left",
    )  # fmt: skip
    table.add_row(
        *(f"{100 * rates[k]:.1f}%" for k in ("gold_quoted", "question_echoed", "cut_sentences", "no_answer")),
        f"{100 * rates['citations_supported']:.1f}%",
        f"{rates['ms_per_question']:.0f}",
    )
    console.print(table)
    for example in result["examples"]:
        console.print(f"[bold]{escape(example['question'])}[/]\n  {escape(example['answer'])}")
    console.print(f"[dim]total {result['seconds']:.1f} s[/]")


def _with_progress(data: Any, modes: list[str], half: str | None) -> dict[str, Any]:
    from cairn.eval.runner import run_eval

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(f"ingest {data.corpus_size} documents", total=None)

        def advance(mode: str, done: int, total: int) -> None:
            bar.update(task, description=f"search {mode}", completed=done, total=total)

        return run_eval(data, modes=modes, half=half, progress=advance)


def show_eval(result: dict[str, Any]) -> None:
    """The metrics table, one row per mode, with the dataset's size and the time taken."""
    ingest = result["ingest"]
    table = Table(
        "mode", "nDCG@10", "recall@10", "recall@100", "MRR@10", "ms/query",
        title=f"{escape(result['dataset'])} ({result['half']}): {result['queries']} queries, "
        f"{result['corpus_documents']} documents "
        f"({ingest['chunks']} chunks, ingested in {ingest['seconds']:.1f} s)",
        title_justify="left",
    )  # fmt: skip
    for mode, m in result["modes"].items():
        table.add_row(
            mode,
            f"{m['ndcg@10']:.4f}",
            f"{m['recall@10']:.4f}",
            f"{m['recall@100']:.4f}",
            f"{m['mrr@10']:.4f}",
            f"{m['ms_per_query']:.1f}",
        )
    console.print(table)
    for mode, why in result["unavailable"].items():
        console.print(f"[yellow]{mode}: unavailable[/] — {escape(why)}")
    console.print(f"[dim]total {result['seconds']:.1f} s[/]")
