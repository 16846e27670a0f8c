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
    engine: Annotated[
        str, typer.Option("--engine", help="local, or ray: the local path against Ray with --ray-workers actors.")
    ] = "local",
    ray_workers: Annotated[
        str, typer.Option(help="With --engine ray: embedding actor counts, comma-separated.")
    ] = "1,2",
    ray_address: Annotated[str | None, typer.Option(help="With --engine ray: the cluster (default: local).")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
    json_only: Annotated[bool, typer.Option("--json", help="Print JSON (the default; kept for scripts).")] = True,
) -> None:
    """Ingest CORPUS into a scratch home; compare with the raw embedder on the same chunks (and the peers).

    With --engine ray: the same corpus through this process and through Ray with each actor count, in one run.
    """
    if engine not in ("local", "ray"):
        raise typer.BadParameter(f"unknown engine {engine!r}; use local or ray", param_hint="--engine")
    if engine == "ray":
        from cairn.bench.ray_ingest import bench_ray_ingest

        counts = [int(count) for count in ray_workers.split(",") if count.strip()]
        _emit(bench_ray_ingest(corpus, workers=counts, address=ray_address), out)
        return
    from cairn.bench.ingest import bench_ingest
    from cairn.bench.peers import PEERS

    _emit(bench_ingest(corpus, batch_size=batch_size, peers=PEERS if peers else ()), out)


@app.command()
def cold(
    corpus: Annotated[Path, typer.Argument(help="A folder of plain-text files (scripts/bench/build_manpages.py).")],
    runs: Annotated[int, typer.Option(min=1, help="Cold ingests per mode; medians are reported.")] = 2,
    batch_size: Annotated[
        int | None, typer.Option(help="Embedding batch size of both (default: CAIRN_EMBED_BATCH_SIZE).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
) -> None:
    """A cold `cairn ingest` process (with and without the embedding worker) against the bare embedder.

    The bare embedder is the warm model on the corpus's text in full windows of its input limit; the ratio
    is the ingest's tokens per second over the bare model's, on the same text.
    """
    from cairn.bench.cold import bench_cold

    _emit(bench_cold(corpus, runs=runs, batch_size=batch_size), out)


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


@app.command()
def sources(
    objects: Annotated[int, typer.Option(min=100, help="Objects in the source's bucket.")] = 10_000,
    changed: Annotated[float, typer.Option(min=0.001, max=1.0, help="Share rewritten before the second sync.")] = 0.01,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
    json_only: Annotated[bool, typer.Option("--json", help="Print JSON (the default; kept for scripts).")] = True,
) -> None:
    """An S3 source on SeaweedFS: a sync with nothing changed (listing only), then one with 1% changed."""
    from cairn.bench.sources import bench_sources

    _emit(bench_sources(objects, changed), out)


@app.command()
def soak(
    duration: Annotated[float, typer.Option(min=10, help="Seconds of load (600 for the recorded benchmark).")] = 600,
    clients: Annotated[int, typer.Option(min=1, help="Concurrent reader clients (search and ask).")] = 4,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between the editor's changes.")] = 1.0,
    key_interval: Annotated[float, typer.Option(min=0.05, help="Seconds between key rotations.")] = 5.0,
    restart: Annotated[str, typer.Option(help="Restarted a quarter of the way in: milvus or none.")] = "milvus",
    plot: Annotated[Path | None, typer.Option(help="Write the latency timeline PNG here.")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
) -> None:
    """Mixed load on two replicas over a stack of its own, a component restarted; exits 1 if the final
    consistency check fails (a document lost or doubled, a reader shown what its key could not see)."""
    from cairn.bench.soak import RESTARTABLE, bench_soak

    if restart not in RESTARTABLE:
        raise typer.BadParameter(f"--restart takes one of {', '.join(RESTARTABLE)}, not {restart!r}")
    result = bench_soak(
        duration=duration, clients=clients, interval=interval, key_interval=key_interval, restart=restart, plot=plot
    )
    _emit(result, out)
    if not result["consistency"]["ok"]:
        raise typer.Exit(1)


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


@app.command()
def catalog(
    sizes: Annotated[
        str, typer.Option(help="Collection sizes in documents, comma-separated.")
    ] = "10000,100000,1000000",
    batches: Annotated[int, typer.Option(min=1, help="Batches of 256 chunks committed per size.")] = 100,
    startup_runs: Annotated[int, typer.Option(min=1, help="New processes started per size (median).")] = 5,
    url: Annotated[
        str | None,
        typer.Option(help="Measure this catalog database (PostgreSQL); default: a fresh SQLite file per size."),
    ] = None,
    postgres: Annotated[
        bool, typer.Option("--postgres", help="Measure a scratch PostgreSQL server (a fresh database per size).")
    ] = False,
    old_manifest_up_to: Annotated[
        int, typer.Option(help="Measure the old JSON manifest up to this many documents (slow beyond 100,000).")
    ] = 100_000,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here, and the PNG beside it.")] = None,
) -> None:
    """Catalog batch-commit p50/p99 and process start-up against collection size, beside the old JSON manifest."""
    from cairn.bench.catalog import run_catalog_bench

    try:
        counts = [int(size) for size in sizes.split(",") if size.strip()]
    except ValueError:
        raise typer.BadParameter(f"--sizes takes comma-separated whole numbers, got {sizes!r}") from None
    result = run_catalog_bench(
        counts,
        batches=batches,
        startup_runs=startup_runs,
        url=url,
        postgres=postgres,
        old_manifest_up_to=old_manifest_up_to,
        plot=out.with_suffix(".png") if out else None,
    )
    _emit(result, out)


@app.command("catalog-reads")
def catalog_reads(
    size: Annotated[int, typer.Option(min=1, help="Live documents in the catalog.")] = 100_000,
    k: Annotated[int, typer.Option(min=1, max=1000, help="Hits whose documents each search reads.")] = 10,
    searches: Annotated[int, typer.Option(min=10, help="Searches timed.")] = 1000,
    url: Annotated[
        str | None, typer.Option(help="Measure this catalog database (PostgreSQL); default: a scratch SQLite file.")
    ] = None,
    postgres: Annotated[bool, typer.Option("--postgres", help="Measure a scratch PostgreSQL server.")] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
) -> None:
    """What reading the catalog on every search adds to its latency (p50/p99 of one search's catalog reads)."""
    from cairn.bench.catalog_reads import run_catalog_read_bench

    if postgres:
        import tempfile

        from cairn.stack.postgres import PostgresServer

        with tempfile.TemporaryDirectory(prefix="cairn-bench-pg-") as scratch:
            server = PostgresServer(Path(scratch)).start()
            try:
                result = run_catalog_read_bench(url=server.url, size=size, k=k, searches=searches)
            finally:
                server.stop()
    else:
        result = run_catalog_read_bench(url=url, size=size, k=k, searches=searches)
    _emit(result, out)
