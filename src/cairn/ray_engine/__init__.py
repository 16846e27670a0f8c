"""Ingest on a Ray cluster: parsing as actors with the local limits, embedding in a pool of model actors.

``cairn ingest PATH --engine ray [--ray-address ADDR]`` (or ``Cairn.ingest(..., engine=RayEngine(...))``)
runs the same `Ingestor` as a local ingest, with two parts replaced: files are parsed by
`ParserActor`s and chunks are embedded by `EmbedActor`s, anywhere on the cluster. Discovery,
chunking and the commits stay with the driver: chunk files go to the vault and versions are
reserved and published through the catalog batch by batch, exactly as a local ingest does, so a Ray
run and ordinary writers can work on one collection at once, and a killed run started again skips
what was published (same bytes) and duplicates nothing.

Without an address, a local Ray is started on 127.0.0.1 (``ray.init``) with this machine's CPUs and
stopped at `close`; with one, the driver joins that cluster, whose nodes must have cairn installed
(the same image as the API and workers) and reach the same vault.

Actors are sized from the cluster: one embedding actor per GPU when it has GPUs (``num_gpus=1``,
CUDA), otherwise CPU actors; parsers take about a quarter of the CPUs. Ray is the optional extra
``cairn[ray]``; this package imports it, so import it only when asked for.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cairn.embed.base import Embedder
from cairn.errors import ConfigError
from cairn.parse import ParseLimits
from cairn.settings import Settings

try:
    import ray
except ImportError as exc:  # pragma: no cover - the extra is installed in the test environment
    raise ConfigError("the Ray engine needs Ray, an optional part of cairn: pip install 'cairn[ray]'") from exc

from .embedding import EmbedActor, RayEmbedder
from .parsing import ParserActor, RayParsePool

__all__ = ["RayEngine", "RayLayout"]


@dataclass(frozen=True)
class RayLayout:
    """How many actors of each kind run, and what each reserves."""

    parsers: int
    embedders: int
    gpus_per_embedder: float = 0.0
    cpus_per_embedder: float = 1.0

    @classmethod
    def for_cluster(cls, resources: dict[str, float], *, embedders: int | None = None) -> RayLayout:
        """One actor per GPU if the cluster has GPUs; else the CPUs shared, about a quarter to parsing."""
        cpus = max(1, int(resources.get("CPU", 1)))
        gpus = int(resources.get("GPU", 0))
        parsers = max(1, cpus // 4)
        if gpus:
            return cls(parsers=parsers, embedders=embedders or gpus, gpus_per_embedder=1.0, cpus_per_embedder=1.0)
        return cls(parsers=parsers, embedders=embedders or max(1, cpus - parsers))


def _wait_placed(actors: list[Any], kind: str, count: int, timeout_s: float) -> None:
    """Return once every actor has started (its model loaded); raise with the reason when they cannot be placed."""
    ready, waiting = ray.wait([actor.pid.remote() for actor in actors], num_returns=len(actors), timeout=timeout_s)
    if waiting:
        for actor in actors:
            ray.kill(actor)
        raise ConfigError(
            f"the Ray cluster placed {len(ready)} of {count} {kind} actors within {timeout_s:.0f} s: it lacks the "
            "CPUs or GPUs they ask for (`ray status` shows what is free); add nodes or lower --ray-embedders"
        )
    ray.get(ready)  # an actor whose start failed (its model did not load) raises here, with the cause


@dataclass
class RayEngine:
    """A connection to a Ray cluster and the actors an ingest runs on; `close` releases them."""

    address: str | None = None
    embedders: int | None = None  # embedding actors; default: sized by the cluster (see `RayLayout`)
    # How long actors may wait to be placed (a KubeRay autoscaler adding a node takes minutes) before the
    # run fails with the reason, rather than waiting for resources that never come.
    start_timeout_s: float = 600.0
    _started_here: bool = field(default=False, init=False)
    _parsers: RayParsePool | None = field(default=None, init=False)
    _embedders: dict[str, RayEmbedder] = field(default_factory=dict, init=False)
    layout: RayLayout | None = field(default=None, init=False)

    def _connect(self) -> dict[str, float]:
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False, configure_logging=False)
            else:
                cpus = os.cpu_count() or 1
                # Asked for more embedding actors than CPUs (a scaling test on a small machine): declare
                # enough logical CPUs that every actor is placed rather than left waiting.
                wanted = (self.embedders or 0) + max(1, cpus // 4)
                ray.init(
                    num_cpus=max(cpus, wanted),
                    _node_ip_address="127.0.0.1",
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
                self._started_here = True
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        if self.layout is None:
            self.layout = RayLayout.for_cluster(resources, embedders=self.embedders)
        return resources

    def parsers(self, settings: Settings) -> RayParsePool:
        """The parser actors, started on first use, with the settings' time and memory limits."""
        if self._parsers is None:
            self._connect()
            assert self.layout is not None
            limits = ParseLimits()
            actors = [
                ParserActor.remote(settings.parse_timeout_s, settings.parse_memory_mb, limits)
                for _ in range(self.layout.parsers)
            ]
            _wait_placed(actors, "parser", self.layout.parsers, self.start_timeout_s)
            self._parsers = RayParsePool(actors)
        return self._parsers

    def embedder_for(self, settings: Settings, local_for: Callable[[str], Embedder]) -> Callable[[str], Embedder]:
        """``embedder_for`` of an `Ingestor`: each model's `RayEmbedder`, its actors started on first use."""

        def embedder(model: str) -> Embedder:
            if model not in self._embedders:
                self._connect()
                assert self.layout is not None
                layout = self.layout
                # One model's actors at a time: they are sized to the cluster, so another model's would
                # wait for resources those hold (a reindex after an ingest, in one engine).
                for other in list(self._embedders):
                    for actor in self._embedders.pop(other).actors:
                        ray.kill(actor)
                device = "cuda" if layout.gpus_per_embedder else settings.embed_device
                actors: list[Any] = [
                    EmbedActor.options(num_cpus=layout.cpus_per_embedder, num_gpus=layout.gpus_per_embedder).remote(
                        model, device, settings.embed_batch_size, int(layout.cpus_per_embedder)
                    )
                    for _ in range(layout.embedders)
                ]
                _wait_placed(actors, "embedding", layout.embedders, self.start_timeout_s)
                self._embedders[model] = RayEmbedder(local_for(model), actors)
            return self._embedders[model]

        return embedder

    def actor_pids(self) -> dict[str, list[int]]:
        """The process ids of the running actors, by kind (for tests and diagnostics)."""
        parsers = [actor.pid.remote() for actor in (self._parsers.actors if self._parsers else [])]
        embedders = [actor.pid.remote() for e in self._embedders.values() for actor in e.actors]
        return {"parsers": list(ray.get(parsers)), "embedders": list(ray.get(embedders))}

    def close(self) -> None:
        """Stop the actors, and the local Ray if this engine started it."""
        if self._parsers is not None:
            with contextlib.suppress(ray.exceptions.RayError):  # an actor already gone has nothing to close
                self._parsers.close()
            for actor in self._parsers.actors:
                ray.kill(actor)
        for embedder in self._embedders.values():
            for actor in embedder.actors:
                ray.kill(actor)
        self._parsers, self._embedders = None, {}
        if self._started_here and ray.is_initialized():
            ray.shutdown()
        self._started_here = False
