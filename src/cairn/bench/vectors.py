"""Deterministic benchmark vectors and exact top-k, shared by `cairn bench recall` and `cairn bench scale`.

``clustered`` vectors imitate sentence embeddings, which sit in topical clusters on the unit sphere: a
point is ``0.6 * centre + 0.8 * noise``, one of 1024 random unit centres plus a random unit direction
orthogonal to it, so two points of a topic have cosine ~0.36 and points of different topics ~0. The
noise is orthogonal so that which rows of a topic are nearest depends on the query (with plain additive
noise, the rows whose noise leans towards the centre are everyone's nearest, and any index finds them).
``random`` vectors (uniform on the sphere) are the hardest case for approximate indexes. Queries come
from the same distribution with another seed, so they are never rows of the collection.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["DIM", "exact_top_k", "make_vectors"]

DIM = 384
Matrix = npt.NDArray[np.float32]


def make_vectors(count: int, *, kind: str = "clustered", seed: int = 0, dim: int = DIM) -> Matrix:
    """*count* unit vectors of *kind* (``clustered`` or ``random``); the same seed gives the same vectors."""
    centres = np.random.default_rng(12345).standard_normal((1024, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    out = np.empty((count, dim), dtype=np.float32)
    for lo in range(0, count, 50_000):
        n = min(50_000, count - lo)
        if kind == "random":
            block = rng.standard_normal((n, dim)).astype(np.float32)
        elif kind == "clustered":
            centre = centres[rng.integers(0, len(centres), n)]
            noise = rng.standard_normal((n, dim)).astype(np.float32)
            noise -= np.sum(noise * centre, axis=1, keepdims=True) * centre  # orthogonal to the centre
            noise /= np.linalg.norm(noise, axis=1, keepdims=True)
            block = 0.6 * centre + 0.8 * noise
        else:
            raise ValueError(f"unknown vector kind {kind!r}; choose clustered or random")
        out[lo : lo + n] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def exact_top_k(data: Matrix, queries: Matrix, k: int) -> npt.NDArray[np.int64]:
    """Row numbers of the *k* largest inner products for each query, best first (brute force)."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    for lo in range(0, len(data), 100_000):
        scores = queries @ data[lo : lo + 100_000].T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        best_ids = np.concatenate([best_ids, top + lo], axis=1)
        keep = np.argsort(-best_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(best_scores, keep, axis=1)
        best_ids = np.take_along_axis(best_ids, keep, axis=1)
    return best_ids
