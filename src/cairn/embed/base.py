"""The embedding seam and the cached, batched path every ingest uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # the vault is not imported here: the embedding worker process imports this package
    from cairn.vault.store import EmbeddingCache

__all__ = ["Embedder", "ExpectsDocuments", "Tokenizer", "embed_with_cache"]

Vector = npt.NDArray[np.float32]


@runtime_checkable
class Tokenizer(Protocol):
    """Token arithmetic in the embedding model's own vocabulary."""

    @property
    def max_tokens(self) -> int:
        """Tokens the model reads per input, special tokens included; the rest is ignored."""

    @property
    def special_tokens(self) -> int:
        """Tokens the model adds around every input (e.g. [CLS] and [SEP])."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens in each text, without special tokens."""

    def split_by_tokens(self, text: str, max_tokens: int) -> list[str]:
        """Cut *text* at token boundaries into consecutive pieces of at most *max_tokens* each."""


@runtime_checkable
class Embedder(Tokenizer, Protocol):
    """Turns text into unit-length vectors."""

    @property
    def model_name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> Vector:
        """One normalized float32 row per text, in input order."""

    def embed_query(self, text: str) -> Vector:
        """One normalized float32 vector for a search query."""


@runtime_checkable
class ExpectsDocuments(Protocol):
    """An embedder that prepares for a large ingest when told one is coming (starts a worker, loads a model)."""

    def expect_documents(self, count: int) -> None:
        """About *count* more texts will follow; called as an ingest finds files to embed."""


def embed_with_cache(embedder: Embedder, cache: EmbeddingCache, texts: Sequence[str]) -> tuple[Vector, int]:
    """Vectors for *texts*, computing only those the cache lacks. Returns (vectors, newly embedded)."""
    from cairn.vault.store import sha256_hex

    hashes = [sha256_hex(t) for t in texts]
    known = cache.get_many(hashes)
    missing = sorted({h: t for h, t in zip(hashes, texts, strict=True) if h not in known}.items())
    if missing:
        fresh = embedder.embed_documents([text for _, text in missing])
        computed = {digest: fresh[i] for i, (digest, _) in enumerate(missing)}
        cache.add_many(computed)
        known = {**known, **computed}
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32), 0
    return np.stack([known[h] for h in hashes]).astype(np.float32, copy=False), len(missing)
