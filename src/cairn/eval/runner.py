"""Run an evaluation set through the real `Cairn` API: ingest into a scratch home, search per mode.

The corpus is ingested into a temporary ``CAIRN_HOME`` (Milvus Lite and a local vault) exactly as a
user would ingest files; every query then goes through `Cairn.search` in each mode. Chunk hits are
collapsed to documents (each at its best chunk's rank) before scoring.
"""

from __future__ import annotations

import inspect
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Self

from cairn.core import Cairn
from cairn.eval.dataset import EvalDataset
from cairn.eval.metrics import QueryMetrics, aggregate_documents, collapse_to_documents, mean_metrics, score_ranking
from cairn.index.milvus import SEARCH_MODES
from cairn.ingest import local_identities
from cairn.models import Answer
from cairn.settings import Settings

__all__ = ["EVAL_MODES", "EvalSession", "ModeUnavailable", "rerank_unavailable", "run_eval"]

EVAL_MODES = (*SEARCH_MODES, "rerank")
_COLLECTION = "eval"
# Chunks fetched per query: enough that the top 100 *documents* survive collapsing most of the time.
DEFAULT_DEPTH = 200
# The reranker reads every candidate with the query (one cross-encoder pass each), so it gets fewer.
RERANK_DEPTH = 30


class ModeUnavailable(Exception):
    """A mode that cannot run on this installation; the message says why (and how to enable it)."""


def rerank_unavailable() -> str | None:
    """Why the rerank mode cannot run, or None when `Cairn.search` takes a ``rerank`` option."""
    if "rerank" in inspect.signature(Cairn.search).parameters:
        return None
    return "this cairn has no reranker: Cairn.search takes no 'rerank' option, so the mode was not run"


class EvalSession:
    """One dataset ingested into a scratch home, ready to be searched in any mode.

    Search-time settings (``rrf_k``) may be changed between `evaluate` calls with `tune`;
    ingest-time ones (chunk size, overlap) need a new session.
    """

    def __init__(
        self,
        dataset: EvalDataset,
        *,
        settings: dict[str, Any] | None = None,
        home: Path | None = None,
        titled: bool = True,
    ):
        self.dataset = dataset
        # A JSONL document with a title reaches cairn as a titled document does: Markdown whose one heading
        # is the title, so every chunk's heading path names its document (and the headings leg of hybrid
        # search reads it). With `titled` off, plain text with the title as its first line.
        self.titled = titled
        self._own_home = home is None
        self.home = Path(tempfile.mkdtemp(prefix="cairn-eval-")) if home is None else home
        # Always a scratch Milvus Lite and a local vault, whatever CAIRN_MILVUS_URI / CAIRN_STORE say.
        chosen: dict[str, Any] = {"milvus_uri": None, "store": None, **(settings or {})}
        self.cairn = Cairn(Settings(home=self.home, **chosen))
        self._by_source: dict[str, str] = {}
        # A document's score: its best chunk's plus this share of its other chunks' (0: best chunk only).
        self.document_share = 0.0
        self.ingest_report: dict[str, Any] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.cairn.close()
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def tune(self, **search_settings: Any) -> None:
        """Change search-time settings (e.g. ``rrf_k``) for the next `evaluate` calls."""
        self.cairn.settings = self.cairn.settings.model_copy(update=search_settings)

    def _corpus_paths(self) -> list[Path]:
        dataset = self.dataset
        if dataset.corpus_dir is not None:
            self._by_source = {str(path.absolute()): doc_id for doc_id, path in dataset.files.items()}
            return [path.absolute() for path in dataset.files.values()]
        folder = (self.home / "corpus").absolute()
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for number, doc in enumerate(dataset.documents):
            if self.titled and doc.title:
                path = folder / f"d{number:07d}.md"
                path.write_text(f"# {doc.title}\n\n{doc.text}\n", encoding="utf-8")
            else:
                path = folder / f"d{number:07d}.txt"
                path.write_text(doc.as_text() + "\n", encoding="utf-8")
            self._by_source[str(path)] = doc.doc_id
            paths.append(path)
        return paths

    def ingest(self) -> dict[str, Any]:
        paths = self._corpus_paths()
        # Hits name documents by their identity (`local_identities`: the file's folder, then its name).
        identities = local_identities(paths, paths)
        self._by_source = {identities.get(path, path): doc_id for path, doc_id in self._by_source.items()}
        started = time.perf_counter()
        report = self.cairn.ingest(paths, collection=_COLLECTION)
        seconds = time.perf_counter() - started
        self.ingest_report = {
            "documents": report.ingested + report.unchanged,
            "failed": len(report.failed),
            "chunks": report.chunks,
            "seconds": round(seconds, 2),
        }
        return self.ingest_report

    @property
    def doc_ids(self) -> Mapping[str, str]:
        """The dataset's document id of each ingested file, by the source cairn names it with (read-only)."""
        return MappingProxyType(self._by_source)

    def ask(self, question: str) -> Answer:
        """`Cairn.ask` on the ingested set, as a user would ask it."""
        return self.cairn.ask(question, collection=_COLLECTION)

    def rank(self, query: str, mode: str, depth: int = DEFAULT_DEPTH) -> list[str]:
        """The dataset's document ids for *query*, best first, from the chunk hits of one search."""
        options: dict[str, Any] = {}
        search_mode = mode
        if mode == "rerank":
            search_mode, options["rerank"], depth = "hybrid", True, min(depth, RERANK_DEPTH)
        result = self.cairn.search(query, collection=_COLLECTION, k=depth, mode=search_mode, **options)  # type: ignore[arg-type]
        if mode == "rerank":
            # Without its model the reranker is skipped with a warning and the fused order stands:
            # scoring that as "rerank" would report hybrid twice under two names.
            skipped = [w for w in getattr(result, "warnings", []) if "rerank" in w.lower()]
            if skipped:
                raise ModeUnavailable(skipped[0])
        hits = [h for h in result.hits if h.source in self._by_source]
        if self.document_share:
            return aggregate_documents(((self._by_source[h.source], h.score) for h in hits), self.document_share)
        return collapse_to_documents(self._by_source[h.source] for h in hits)

    def evaluate(
        self,
        mode: str,
        *,
        depth: int = DEFAULT_DEPTH,
        half: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Mean metrics of *mode* over the dataset's queries (or one *half* of them, over the same
        ingest), with the time the searches took."""
        asked = self.dataset if half is None else self.dataset.half(half)
        per_query: list[QueryMetrics] = []
        started = time.perf_counter()
        for done, (query_id, text) in enumerate(asked.queries.items(), start=1):
            per_query.append(score_ranking(self.rank(text, mode, depth), asked.qrels[query_id]))
            if progress is not None:
                progress(done)
        seconds = time.perf_counter() - started
        metrics = {name: round(value, 4) for name, value in mean_metrics(per_query).items()}
        return {
            **metrics,
            "seconds": round(seconds, 2),
            "ms_per_query": round(1000 * seconds / max(len(per_query), 1), 1),
        }


def run_eval(
    dataset: EvalDataset,
    *,
    modes: Sequence[str] = EVAL_MODES,
    settings: dict[str, Any] | None = None,
    depth: int = DEFAULT_DEPTH,
    half: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Ingest *dataset* into a scratch home and score each of *modes*; the JSON `cairn eval` prints.

    With *half* (``tune`` or ``held-out``), only that half's queries are scored; the whole corpus
    is ingested either way, so the two halves' numbers come from the same search problem.

    A mode that cannot run here (``rerank`` without a reranker) is listed under ``unavailable``
    with the reason instead of being scored.
    """
    unknown = [m for m in modes if m not in EVAL_MODES]
    if unknown:
        raise ValueError(f"unknown eval mode(s) {', '.join(unknown)}; choose from {', '.join(EVAL_MODES)}")
    asked = dataset if half is None else dataset.half(half)
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    unavailable: dict[str, str] = {}
    with EvalSession(dataset, settings=settings) as session:
        ingest = session.ingest()
        for mode in modes:
            why = rerank_unavailable() if mode == "rerank" else None
            if why is not None:
                unavailable[mode] = why
                continue
            step = None if progress is None else (lambda done, mode=mode: progress(mode, done, len(asked.queries)))
            try:
                results[mode] = session.evaluate(mode, depth=depth, half=half, progress=step)
            except ModeUnavailable as exc:
                unavailable[mode] = str(exc)
        used = session.cairn.settings
    return {
        "dataset": dataset.name,
        "half": half or "all",
        "queries": len(asked.queries),
        "corpus_documents": dataset.corpus_size,
        "ingest": ingest,
        "settings": {
            "embed_model": used.embed_model,
            "chunk_max_tokens": used.chunk_max_tokens,
            "chunk_overlap_tokens": used.chunk_overlap_tokens,
            "embed_heading_context": used.embed_heading_context,
            "bm25_k1": used.bm25_k1,
            "bm25_b": used.bm25_b,
            "bm25_analyzer": used.bm25_analyzer,
            "keyword_heading_context": used.keyword_heading_context,
            "hybrid_fusion": used.hybrid_fusion,
            "fusion_dense_weight": used.fusion_dense_weight,
            "fusion_heading_weight": used.fusion_heading_weight,
            "rrf_k": used.rrf_k,
            "exact_phrase_promotion": used.exact_phrase_promotion,
            "depth": depth,
            "rerank_depth": min(depth, RERANK_DEPTH),
        },
        "modes": results,
        "unavailable": unavailable,
        "seconds": round(time.perf_counter() - started, 2),
    }
