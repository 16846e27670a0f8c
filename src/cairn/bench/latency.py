"""Query latency under concurrent clients: idle, while ingesting at a fixed rate, and during index builds.

A scratch home gets the first half of the corpus; then *clients* threads search without pause for three
phases of *seconds* each:

1. **idle**: nothing else runs;
2. **ingest**: the other half of the corpus is ingested one file at a time, at a fixed rate that spreads
   it over the phase (each file is one `Cairn.ingest`: parsed, embedded, stored, indexed, published);
3. **index**: index builds run back to back in the same engine (a scratch collection of random vectors
   gets an IVF_FLAT index; Milvus Lite 2.5 has no compaction, it answers UNIMPLEMENTED).

Each phase draws its queries from its own slice of the query pool (lines of the corpus), so the
query-vector cache warms the same way in every phase. In-process, each query's time is split into
query embedding, engine search and the rest (cairn's own overhead). With ``http``, the clients call
``POST /v1/search`` on the service (`cairn.http.create_app` on uvicorn, 127.0.0.1, one keep-alive
connection per client, a reader key).
"""

from __future__ import annotations

import random
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from cairn.bench.ingest import machine
from cairn.core import Cairn
from cairn.embed.base import Embedder
from cairn.ingest import discover
from cairn.settings import Settings

__all__ = ["bench_latency"]

PHASES = ("idle", "ingest", "index")


class _Split(threading.local):
    """Seconds of the current query spent embedding and in the engine (per thread)."""

    embed = 0.0
    engine = 0.0


class _TimedEmbedder:
    """The real embedder; query embedding time is added to the calling thread's split."""

    def __init__(self, inner: Embedder, split: _Split) -> None:
        self._inner = inner
        self._split = split

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def embed_query(self, text: str) -> Any:
        started = time.perf_counter()
        try:
            return self._inner.embed_query(text)
        finally:
            self._split.embed += time.perf_counter() - started


def _queries(cairn: Cairn, collection: str, count: int, seed: int) -> list[str]:
    """Distinct queries of 4-10 words cut from lines of the ingested chunks."""
    words_of: list[list[str]] = []
    for doc in cairn.catalog.iter_live_documents(collection):
        version = doc.live_version()
        assert version is not None
        chunks, _ = cairn.vault.read_chunks(version.chunks_key, doc_id=doc.doc_id, version=version.version)
        for chunk in chunks:
            words_of.extend(line.split() for line in chunk.text.splitlines() if len(line.split()) >= 4)
    rng = random.Random(seed)
    pool: list[str] = []
    seen: set[str] = set()
    for _ in range(count * 20):
        if len(pool) == count or not words_of:
            break
        words = rng.choice(words_of)
        start = rng.randrange(0, max(1, len(words) - 4))
        text = " ".join(words[start : start + rng.randint(4, 10)])
        if text not in seen:
            seen.add(text)
            pool.append(text)
    return pool


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    p50, p95, p99 = np.percentile(np.asarray(values) * 1000, [50, 95, 99])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "p99": round(float(p99), 2)}


def bench_latency(
    corpus: list[Path],
    *,
    clients: int = 8,
    seconds: float = 60.0,
    http: bool = False,
    ingest_rate: float | None = None,
    k: int = 10,
    mode: str = "hybrid",
    query_pool: int = 300,
    query_cache: bool = True,
    plot: Path | None = None,
    index_rows: int = 5_000,
) -> dict[str, Any]:
    """Run the three phases; per phase p50/p95/p99 and QPS; loaded-to-idle p99 ratios; optionally a PNG."""
    files, _ = discover(corpus)
    if len(files) < 2:
        raise ValueError("the latency benchmark needs at least two files: half to search, half to ingest")
    base, stream = files[: len(files) // 2], files[len(files) // 2 :]
    rate = ingest_rate or len(stream) / seconds
    with tempfile.TemporaryDirectory(prefix="cairn-bench-latency-") as home:
        settings = Settings(home=Path(home), query_cache_size=1024 if query_cache else 0)
        cairn = Cairn(settings)
        split = _Split()
        cairn._embedder = cast(Embedder, _TimedEmbedder(cairn.embedder, split))
        index = cairn.index
        engine_search = index.search

        def timed_search(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return engine_search(*args, **kwargs)
            finally:
                split.engine += time.perf_counter() - started

        setattr(index, "search", timed_search)  # noqa: B010 - instrument this one instance
        prepared = cairn.ingest(base, collection="bench")
        pool = _queries(cairn, "bench", query_pool * len(PHASES), seed=7)
        slices = {name: pool[i::3] for i, name in enumerate(PHASES)}
        for i in range(clients):  # load the query model and the collection before any clock runs
            cairn.search(f"warm up {i}", collection="bench", k=k, mode=mode)  # type: ignore[arg-type]

        server = None
        search_fn: Callable[[Any, str], None]
        if http:
            server, base_url, token = _start_service(cairn)

            def make_client() -> Any:
                import httpx

                return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

            def search_fn(client: Any, query: str) -> None:
                response = client.post("/v1/search", json={"query": query, "collection": "bench", "k": k, "mode": mode})
                response.raise_for_status()

        else:

            def make_client() -> Any:
                return None

            def search_fn(client: Any, query: str) -> None:
                cairn.search(query, collection="bench", k=k, mode=mode)  # type: ignore[arg-type]

        t0 = time.perf_counter()
        samples: list[tuple[float, float, str, float, float]] = []  # start, total, phase, embed, engine
        errors: dict[str, int] = dict.fromkeys(PHASES, 0)
        events: list[tuple[float, str]] = []
        phase_spans: list[tuple[str, float, float]] = []
        lock = threading.Lock()
        extra: dict[str, Any] = {}
        try:
            for phase in PHASES:
                hits_before, misses_before = cairn.query_cache.hits, cairn.query_cache.misses
                stop = threading.Event()
                began = time.perf_counter() - t0
                background = _background(phase, cairn, stream, rate, stop, events, t0, extra, index_rows)

                def client_loop(number: int, phase: str = phase, stop: threading.Event = stop) -> None:
                    rng = random.Random(number * 1000 + PHASES.index(phase))
                    client = make_client()
                    try:
                        while not stop.is_set():
                            query = rng.choice(slices[phase])
                            split.embed = split.engine = 0.0
                            started = time.perf_counter()
                            try:
                                search_fn(client, query)
                            except Exception:
                                with lock:
                                    errors[phase] += 1
                                continue
                            took = time.perf_counter() - started
                            with lock:
                                samples.append((started - t0, took, phase, split.embed, split.engine))
                    finally:
                        if client is not None:
                            client.close()

                threads = [threading.Thread(target=client_loop, args=(n,), daemon=True) for n in range(clients)]
                for thread in threads:
                    thread.start()
                if background is not None:
                    background.start()
                time.sleep(seconds)
                stop.set()
                for thread in threads:
                    thread.join()
                ended = time.perf_counter() - t0
                if background is not None:
                    background.join()
                phase_spans.append((phase, began, ended))
                extra[f"{phase}_cache"] = (
                    cairn.query_cache.hits - hits_before,
                    cairn.query_cache.misses - misses_before,
                )
        finally:
            if server is not None:
                server.should_exit = True
        cairn.close()

    results: dict[str, Any] = {}
    for phase, began, ended in phase_spans:
        chosen = [s for s in samples if s[2] == phase]
        totals = [s[1] for s in chosen]
        hits, misses = extra[f"{phase}_cache"]
        entry: dict[str, Any] = {
            "queries": len(chosen),
            "errors": errors[phase],
            "seconds": round(ended - began, 2),
            "qps": round(len(chosen) / (ended - began), 1),
            "latency_ms": _percentiles(totals),
            "query_cache_hits": hits,
            "query_cache_misses": misses,
        }
        if not http:
            entry["embed_ms"] = _percentiles([s[3] for s in chosen])
            entry["engine_ms"] = _percentiles([s[4] for s in chosen])
            entry["cairn_overhead_ms"] = _percentiles([s[1] - s[3] - s[4] for s in chosen])
        results[phase] = entry
    idle_p99 = results["idle"]["latency_ms"]["p99"] or 1e-9
    result: dict[str, Any] = {
        "benchmark": "latency",
        "machine": machine(),
        "target": "http://127.0.0.1 POST /v1/search (uvicorn, in-process)" if http else "Cairn.search in-process",
        "engine": "milvus-lite 2.5 (embedded)",
        "embed_worker": settings.embed_worker,
        "corpus": [str(p) for p in corpus],
        "searched_files": len(base),
        "searched_chunks": prepared.chunks,
        "clients": clients,
        "seconds_per_phase": seconds,
        "mode": mode,
        "k": k,
        "query_pool_per_phase": len(slices["idle"]),
        "query_cache": query_cache,
        "ingest_rate_files_per_s": round(rate, 3),
        "ingested_during_ingest_phase": extra.get("ingested_files", 0),
        "ingested_chunks_during_ingest_phase": extra.get("ingested_chunks", 0),
        "index_builds_during_index_phase": extra.get("index_builds", 0),
        "compaction": "not available on Milvus Lite 2.5 (UNIMPLEMENTED); index builds only",
        "phases": results,
        "ratio_ingest_p99_to_idle_p99": round(results["ingest"]["latency_ms"]["p99"] / idle_p99, 2),
        "ratio_index_p99_to_idle_p99": round(results["index"]["latency_ms"]["p99"] / idle_p99, 2),
    }
    if plot is not None:
        from cairn.bench.plots import plot_latency_timeline

        plot_latency_timeline(
            [(s[0], s[1] * 1000, s[2]) for s in samples],
            phase_spans,
            events,
            plot,
            title=f"cairn {mode} search, {clients} clients ({'HTTP' if http else 'in-process'}): idle, ingest, index",
        )
        result["plot"] = str(plot)
    return result


def _background(
    phase: str,
    cairn: Cairn,
    stream: Sequence[Path],
    rate: float,
    stop: threading.Event,
    events: list[tuple[float, str]],
    t0: float,
    extra: dict[str, Any],
    index_rows: int,
) -> threading.Thread | None:
    if phase == "ingest":

        def ingest() -> None:
            started = time.perf_counter()
            for i, path in enumerate(stream):
                due = started + i / rate
                while (wait := due - time.perf_counter()) > 0:
                    if stop.wait(wait):
                        return
                if stop.is_set():
                    return
                report = cairn.ingest([path], collection="bench")
                events.append((time.perf_counter() - t0, "ingest"))
                extra["ingested_files"] = extra.get("ingested_files", 0) + report.ingested
                extra["ingested_chunks"] = extra.get("ingested_chunks", 0) + report.chunks

        return threading.Thread(target=ingest, daemon=True)
    if phase == "index":

        def build() -> None:
            client = cairn.index.client
            rng = np.random.default_rng(3)
            vectors = rng.standard_normal((index_rows, 384)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            rows = [{"id": i, "vector": vectors[i].tolist()} for i in range(index_rows)]
            number = 0
            while not stop.is_set():
                name = f"bench_index_build_{number}"
                events.append((time.perf_counter() - t0, "index_start"))
                client.create_collection(name, dimension=384, metric_type="IP", auto_id=False)
                client.release_collection(name)
                client.drop_index(name, "vector")
                for lo in range(0, index_rows, 5000):
                    client.insert(name, rows[lo : lo + 5000])
                client.flush(name)
                params = client.prepare_index_params()
                params.add_index("vector", index_type="IVF_FLAT", metric_type="IP", params={"nlist": 256})
                client.create_index(name, params)
                client.load_collection(name)
                client.drop_collection(name)
                events.append((time.perf_counter() - t0, "index_end"))
                number += 1
            extra["index_builds"] = number

        return threading.Thread(target=build, daemon=True)
    return None


def _start_service(cairn: Cairn) -> tuple[Any, str, str]:
    """The HTTP service for *cairn* on a free loopback port, in a thread; (server, base URL, reader key)."""
    import uvicorn

    from cairn.http.app import ServiceLimits, create_app

    token, _ = cairn.create_key(role="reader", tenant="default")
    # The default per-key rate limit (600 a minute) would turn this load into 429s; the benchmark measures latency.
    app = create_app(cairn, limits=ServiceLimits(requests_per_minute=10**9))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the HTTP service did not start within 30 s")
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}", token
