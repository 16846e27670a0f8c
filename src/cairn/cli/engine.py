"""The ``--engine`` options shared by the commands that embed (`ingest`, `reindex`): this process, or Ray."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from cairn.errors import InvalidRequest

if TYPE_CHECKING:
    from cairn.ray_engine import RayEngine

EngineOpt = Annotated[
    str, typer.Option("--engine", help="local (this process) or ray (parse and embed on a Ray cluster).")
]
RayAddressOpt = Annotated[
    str | None, typer.Option("--ray-address", help="The Ray cluster to join (default: start a local Ray).")
]
RayEmbeddersOpt = Annotated[
    int | None, typer.Option("--ray-embedders", help="Embedding actors (default: one per GPU, or by CPUs).")
]


@contextmanager
def chosen_engine(name: str, address: str | None, embedders: int | None) -> Iterator[RayEngine | None]:
    """The Ray engine for ``--engine ray`` (stopped afterwards), or ``None`` for this process."""
    if name == "local":
        yield None
        return
    if name != "ray":
        raise InvalidRequest(f"unknown engine {name!r}: use local or ray")
    from cairn.ray_engine import RayEngine

    engine = RayEngine(address=address, embedders=embedders)
    try:
        yield engine
    finally:
        engine.close()
