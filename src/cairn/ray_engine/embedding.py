"""Embedding on a Ray cluster: a pool of model actors, one per GPU or per CPU share.

`RayEmbedder` is an `Embedder`: token counting, splitting and queries run on the driver's own copy
of the model (the chunker needs the tokenizer there), while `embed_documents` cuts the texts into
slices and embeds them on the actors at once, in order. An actor holds the model loaded; on a GPU
node it is placed with ``num_gpus=1`` and runs the model on CUDA. A lost actor is restarted by Ray
and its call retried.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import ray

from cairn.embed.base import Embedder, Vector

__all__ = ["EmbedActor", "RayEmbedder"]

# Texts per actor call: large enough to keep a GPU busy, small enough to spread a batch over the actors.
SLICE = 256


class _Model:
    """The actor's body (see `EmbedActor`): the model, loaded once, on the device the actor was given."""

    def __init__(self, model: str, device: str, batch_size: int, threads: int) -> None:
        import torch

        from cairn.embed.local import SentenceTransformerEmbedder

        torch.set_num_threads(max(1, threads))  # the CPUs Ray reserved for this actor, not the node's
        self.embedder = SentenceTransformerEmbedder(model, device=device, batch_size=batch_size, worker=False)

    def embed(self, texts: list[str]) -> Vector:
        return self.embedder.embed_documents(texts)

    def pid(self) -> int:
        return os.getpid()


EmbedActor = ray.remote(max_restarts=-1, max_task_retries=2)(_Model)


class RayEmbedder:
    """An `Embedder` whose document embedding runs on Ray actors (see the module docstring)."""

    def __init__(self, local: Embedder, actors: list[Any]) -> None:
        if not actors:
            raise ValueError("a RayEmbedder needs at least one embedding actor")
        self.local = local
        self.actors = actors

    @property
    def model_name(self) -> str:
        return self.local.model_name

    @property
    def dim(self) -> int:
        return self.local.dim

    @property
    def max_tokens(self) -> int:
        return self.local.max_tokens

    @property
    def special_tokens(self) -> int:
        return self.local.special_tokens

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.local.count_tokens(texts)

    def split_by_tokens(self, text: str, max_tokens: int) -> list[str]:
        return self.local.split_by_tokens(text, max_tokens)

    def embed_query(self, text: str) -> Vector:
        return self.local.embed_query(text)

    def embed_documents(self, texts: Sequence[str]) -> Vector:
        """One normalized row per text, in input order; slices embedded on all actors at once."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        size = max(1, min(SLICE, -(-len(texts) // len(self.actors))))
        slices = [list(texts[start : start + size]) for start in range(0, len(texts), size)]
        refs = [self.actors[n % len(self.actors)].embed.remote(part) for n, part in enumerate(slices)]
        return np.concatenate(ray.get(refs)).astype(np.float32, copy=False)
