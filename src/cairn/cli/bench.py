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
    peers: Annotated[
        bool, typer.Option("--peers", help="Also run LangChain and LlamaIndex on the same files (bench extra).")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
    json_only: Annotated[bool, typer.Option("--json", help="Print JSON (the default; kept for scripts).")] = True,
) -> None:
    """Ingest CORPUS into a scratch home; compare with the raw embedder on the same chunks (and the peers)."""
    from cairn.bench.ingest import bench_ingest
    from cairn.bench.peers import PEERS

    _emit(bench_ingest(corpus, batch_size=batch_size, peers=PEERS if peers else ()), out)


@app.command()
def latency(
    corpus: Annotated[list[Path], typer.Argument(help="Files and folders: half are searched, half ingested.")],
    clients: Annotated[int, typer.Option(min=1, help="Concurrent query clients.")] = 8,
    seconds: Annotated[float, typer.Option(min=1, help="Seconds per phase (idle, ingest, index).")] = 60,
    http: Annotated[bool, typer.Option("--http", help="Query the HTTP service (uvicorn on 127.0.0.1).")] = False,
    ingest_rate: Annotated[
        float | None, typer.Option(help="Files ingested per second (default: the second half over the phase).")
    ] = None,
    mode: Annotated[str, typer.Option(help="Search mode: dense, keyword or hybrid.")] = "hybrid",
    query_cache: Annotated[bool, typer.Option(help="Keep the query-vector cache on.")] = True,
    plot: Annotated[Path | None, typer.Option(help="Write the timeline PNG here.")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
    json_only: Annotated[bool, typer.Option("--json", help="Print JSON (the default; kept for scripts).")] = True,
) -> None:
    """Query p50/p95/p99 and QPS idle, while ingesting at a fixed rate and during index builds."""
    from cairn.bench.latency import bench_latency

    result = bench_latency(
        corpus,
        clients=clients,
        seconds=seconds,
        http=http,
        ingest_rate=ingest_rate,
        mode=mode,
        query_cache=query_cache,
        plot=plot,
    )
    _emit(result, out)


@app.command()
def parse(
    corpus: Annotated[list[Path], typer.Argument(help="Files and folders to parse.")],
    workers: Annotated[list[int], typer.Option(min=1, help="Worker counts to compare (repeat the option).")] = [1, 2],  # noqa: B006
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
) -> None:
    """Parse CORPUS with each number of parser processes; report files/s and the speed-up over one."""
    from cairn.bench.parse import bench_parse

    _emit(bench_parse(corpus, workers=workers), out)


@app.command()
def bulk(
    rows: Annotated[list[int], typer.Option(min=1, help="Batch sizes to compare (repeat the option).")] = [  # noqa: B006
        1_000,
        5_000,
        20_000,
        50_000,
    ],
    repeats: Annotated[int, typer.Option(min=1, help="Runs per size and path; the fastest counts.")] = 1,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
) -> None:
    """Row inserts against bulk import from S3 on a Milvus server (a `cairn stack` of its own), by batch size."""
    from cairn.bench.bulk import bench_bulk

    _emit(bench_bulk(rows, repeats=repeats), out)


def _emit(result: dict[str, Any], out: Path | None) -> None:
    print_json(result)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")


@app.command()
def recall(
    size: Annotated[list[int], typer.Option(min=100, help="Collection sizes (repeat the option).")] = [10_000, 100_000],  # noqa: B006
    server: Annotated[
        bool, typer.Option("--server", help="Run on a Milvus server stack of its own (HNSW, IVF).")
    ] = False,
    queries: Annotated[int, typer.Option(min=1, help="Queries per setting.")] = 200,
    vectors: Annotated[str, typer.Option(help="clustered (embedding-like) or random vectors.")] = "clustered",
    index: Annotated[
        list[str] | None,
        typer.Option(help="Only these index types (repeat): FLAT, IVF_FLAT, IVF_SQ8, HNSW, AUTOINDEX."),
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write the recall/latency PNG here.")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
    json_only: Annotated[bool, typer.Option("--json", help="Print JSON (the default; kept for scripts).")] = True,
) -> None:
    """ANN recall@10 against exact search by size, index type and nprobe/ef; 1,000,000 is allowed but slow."""
    from cairn.bench.recall import bench_recall

    result = bench_recall(size, server=server, queries=queries, kind=vectors, plot=plot, indexes=index or ())
    _emit(result, out)


@app.command()
def scale(
    size: Annotated[list[int], typer.Option(min=1, help="Collection sizes (repeat the option).")] = [  # noqa: B006
        1_000,
        10_000,
        50_000,
    ],
    server: Annotated[bool, typer.Option("--server", help="Run on a Milvus server stack of its own.")] = False,
    queries: Annotated[int, typer.Option(min=1, help="Queries per mode and size.")] = 100,
    dense_index: Annotated[str, typer.Option(help="Dense index of the collection (cairn's default: FLAT).")] = "FLAT",
    plot: Annotated[Path | None, typer.Option(help="Write the latency/size PNG here.")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
    json_only: Annotated[bool, typer.Option("--json", help="Print JSON (the default; kept for scripts).")] = True,
) -> None:
    """Search latency (dense, keyword, hybrid) against collection size, through cairn's schema and search path."""
    from cairn.bench.scale import bench_scale

    _emit(bench_scale(size, server=server, queries=queries, dense_index=dense_index, plot=plot), out)
