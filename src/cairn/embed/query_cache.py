"""A bounded cache of query vectors, keyed by model and exact query text.

Users repeat queries (the same question from many people, a UI that searches again on every
filter change); embedding one costs a model call, a lookup costs a dictionary access. Least
recently used entries go first. Safe to share between threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import numpy.typing as npt

from cairn.embed.base import Embedder

__all__ = ["QueryEmbeddingCache"]

Vector = npt.NDArray[np.float32]


class QueryEmbeddingCache:
    """Query vectors for the last *size* distinct (model, text) pairs; ``size=0`` caches nothing."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"a query cache holds 0 or more entries, not {size}")
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[str, str], Vector] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, embedder: Embedder, text: str) -> Vector:
        """The vector of *text* by *embedder*, from the cache when it was asked for recently."""
        key = (embedder.model_name, text)
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return cached
            self.misses += 1
        vector = embedder.embed_query(text)
        vector.setflags(write=False)  # shared between callers: nobody may change it in place
        if self.size:
            with self._lock:
                self._entries[key] = vector
                self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return vector

    def __len__(self) -> int:
        return len(self._entries)
