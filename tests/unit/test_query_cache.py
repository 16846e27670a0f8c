"""The query-vector cache: repeated queries skip the model, entries are bounded, models never mix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from cairn.embed.query_cache import QueryEmbeddingCache


class _CountingModel:
    """A stand-in that records which texts it embedded; vectors encode the model name and text length."""

    def __init__(self, name: str) -> None:
        self.model_name = name
        self.calls: list[str] = []

    def embed_query(self, text: str) -> np.ndarray:  # type: ignore[type-arg]
        self.calls.append(text)
        return np.array([len(text), len(self.model_name)], dtype=np.float32)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:  # type: ignore[type-arg]
        raise AssertionError("queries only")


def test_a_repeated_query_is_embedded_once() -> None:
    """The second identical query is a hit: same vector, no model call."""
    cache = QueryEmbeddingCache(8)
    model = _CountingModel("m")
    first = cache.embed(model, "paid leave")  # type: ignore[arg-type]
    second = cache.embed(model, "paid leave")  # type: ignore[arg-type]
    assert model.calls == ["paid leave"]
    assert np.array_equal(first, second)
    assert (cache.hits, cache.misses) == (1, 1)
    assert not second.flags.writeable


def test_the_least_recently_used_query_is_evicted_first() -> None:
    """With room for two, touching 'a' keeps it; 'b' goes when 'c' arrives."""
    cache = QueryEmbeddingCache(2)
    model = _CountingModel("m")
    for text in ("a", "b", "a", "c", "a", "b"):
        cache.embed(model, text)  # type: ignore[arg-type]
    assert model.calls == ["a", "b", "c", "b"]
    assert len(cache) == 2


def test_the_same_text_under_two_models_is_two_entries() -> None:
    """The key is (model, text): a reindexed collection never gets the old model's vector."""
    cache = QueryEmbeddingCache(8)
    small, large = _CountingModel("small"), _CountingModel("large-model")
    assert cache.embed(small, "q")[1] == 5  # type: ignore[arg-type]
    assert cache.embed(large, "q")[1] == 11  # type: ignore[arg-type]
    assert small.calls == ["q"]
    assert large.calls == ["q"]


def test_size_zero_embeds_every_query() -> None:
    """A cache of size 0 keeps nothing."""
    cache = QueryEmbeddingCache(0)
    model = _CountingModel("m")
    cache.embed(model, "q")  # type: ignore[arg-type]
    cache.embed(model, "q")  # type: ignore[arg-type]
    assert model.calls == ["q", "q"]
    assert len(cache) == 0


def test_a_negative_size_is_refused() -> None:
    """The size is validated at construction."""
    with pytest.raises(ValueError, match="0 or more"):
        QueryEmbeddingCache(-1)
