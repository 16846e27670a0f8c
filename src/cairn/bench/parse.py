"""Parsing throughput with one parser process and with several, on the same files.

Every file of the corpus is parsed by the `ParsePool` (the same code path as ingest) once per
worker count; the pool is started and warmed before the clock runs, so process start-up is not
counted. The speed-up of N workers over one says how well parsing uses the machine's cores.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cairn.bench.ingest import machine
from cairn.ingest import discover
from cairn.parse.pool import ParsePool
from cairn.settings import Settings

__all__ = ["bench_parse"]


def bench_parse(corpus: list[Path], *, workers: list[int]) -> dict[str, Any]:
    files, _ = discover(corpus)
    paths = [str(f) for f in files]
    settings = Settings()
    runs: list[dict[str, Any]] = []
    walls: list[float] = []
    for count in workers:
        pool = ParsePool(workers=count, timeout_s=settings.parse_timeout_s, memory_mb=settings.parse_memory_mb)
        try:
            list(pool.parse(paths[: count * 2]))  # start and warm every worker
            started = time.perf_counter()
            outcomes = list(pool.parse(paths))
            wall = time.perf_counter() - started
        finally:
            pool.close()
        walls.append(wall)
        parsed = [o for o in outcomes if o.parsed is not None]
        runs.append(
            {
                "workers": count,
                "wall_s": round(wall, 3),
                "files_per_s": round(len(paths) / wall, 1),
                "worker_cpu_s": round(sum(o.seconds for o in outcomes), 2),
                "parsed": len(parsed),
                "elements": sum(len(o.parsed.elements) for o in parsed if o.parsed),
                "megabytes": round(sum(o.size for o in parsed) / 1e6, 1),
            }
        )
    for run, wall in zip(runs, walls, strict=True):
        run["speedup"] = round(walls[0] / wall, 2)
    return {"machine": machine(), "corpus": [str(p) for p in corpus], "files": len(paths), "runs": runs}
