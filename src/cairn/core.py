"""`Cairn`: the one object the CLI, the HTTP API and Python users all drive."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cairn._admin import Administration
from cairn._base import MAX_K, _document_access
from cairn._documents import DocumentOperations
from cairn.access import authorize, permits, retrieval_filter
from cairn.auth import Principal
from cairn.errors import InvalidRequest
from cairn.filters import compile_filter, filter_from_json, parse_filter
from cairn.generate.answer import AnswerStream
from cairn.generate.conversation import Turn
from cairn.index.fusion import HybridFusion
from cairn.index.milvus import SEARCH_MODES, SearchMode
from cairn.ingest import IngestProgress
from cairn.models import (
    Answer,
    CollectionInfo,
    IngestReport,
    SearchResult,
)
from cairn.retrieve import candidate_pool, promote_exact_phrases
from cairn.sources.api import SourceOperations

if TYPE_CHECKING:
    from cairn.ray_engine import RayEngine

__all__ = ["Cairn"]

# For this long after any process changed a collection, searches read the engine strongly (as the
# writing process itself does after its own writes), so a change made anywhere is seen everywhere.
FRESH_CHANGE_S = 10.0


class Cairn(DocumentOperations, Administration, SourceOperations):
    """Ingest, search and ask over collections kept in a vault and indexed in Milvus.

    Heavy parts (the embedding model, the engine) load on first use. Safe to share between
    threads; one ingest per collection runs at a time, and searches never wait for it.
    """

    # -- ingest --------------------------------------------------------------------------------
    def ingest(
        self,
        paths: str | Path | Sequence[str | Path],
        *,
        collection: str | None = None,
        sync: bool = False,
        progress: Callable[[IngestProgress], None] | None = None,
        tenant: str | None = None,
        allow: Sequence[str] | None = None,
        principal: Principal | None = None,
        sources: Mapping[str | Path, str] | None = None,
        engine: RayEngine | None = None,
    ) -> IngestReport:
        """Ingest files and folders (one path or several); unchanged files are skipped, changed ones replaced.

        *tenant* and *allow* (groups, ``user:NAME``, ``key:ID`` or ``*``) set who may see the
        documents; a key may only ingest into its own tenant. *sources* names the documents of
        given files (an upload's name) instead of their absolute paths. With *engine*
        (`cairn.ray_engine.RayEngine`), files are parsed and embedded on a Ray cluster.
        """
        name = self._collection(collection)
        authorize(principal, "ingest", name)
        access = _document_access(tenant, allow, principal)
        self._check_tenant_may_write(name, principal)
        ingestor = self._ingestor(name, create=True, engine=engine)
        given = [paths] if isinstance(paths, str | Path) else paths
        named = {str(path): source for path, source in (sources or {}).items()}
        report = ingestor.run(
            [Path(p) for p in given], sync=sync, progress=progress, access=access, sources=named, principal=principal
        )
        self._record(
            principal,
            "ingest",
            collection=name,
            detail=f"{report.ingested} ingested, {report.unchanged} unchanged, {report.removed} removed, "
            f"{len(report.failed)} failed",
        )
        return report

    # -- retrieval -----------------------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        collection: str | None = None,
        k: int = 10,
        mode: SearchMode = "hybrid",
        principal: Principal | None = None,
        filter: str | dict[str, object] | list[object] | None = None,  # noqa: A002 - the API's word
        rerank: bool = False,
        diversify: bool = False,
    ) -> SearchResult:
        """The *k* chunks that best match *query*, by dense, keyword (BM25) or hybrid search.

        *filter* narrows the search in the grammar of `cairn.filters` (``mime = "application/pdf"
        and version >= 2``) or its JSON form. With a *principal*, only documents of its tenant whose
        ACL admits it are searched, whatever the filter says. *rerank* reorders a wider candidate
        pool with the cross-encoder (``CAIRN_RERANK_MODEL``; skipped with a warning when it is not
        installed); *diversify* picks the *k* by MMR so near-duplicates do not crowd the list.
        """
        if not query.strip():
            raise InvalidRequest("the query is empty; pass the words to search for")
        if not 1 <= k <= MAX_K:
            raise InvalidRequest(f"k={k} is out of range; choose 1 to {MAX_K}")
        if mode not in SEARCH_MODES:
            raise InvalidRequest(f"unknown search mode {mode!r}; choose one of {', '.join(SEARCH_MODES)}")
        name = self._collection(collection)
        authorize(principal, "search", name)
        with self.readers.reading(), self.catalog.snapshot(name) as snapshot:
            # One catalog snapshot names the index and the model together (a reindex switches both at
            # once), says which rows are hidden, and gives the hits' documents after the engine answers.
            # Without BM25 (a Milvus server older than 2.5) every mode runs as dense, so it needs the vector.
            state = snapshot.state
            # Hits count only as the live versions of catalog documents (below), so a collection without
            # one has nothing to find: neither the query's vector nor the engine is needed (Milvus Lite
            # cannot score BM25 over an index without rows, and prints an engine error trying). One
            # indexed lookup that stops at the first live document.
            searchable = bool(self.catalog.live_documents(name, limit=1))
            dense_needed = mode != "keyword" or not self.index.features.bm25
            vector = (
                self.query_cache.embed(self.embedder_for(state.embed_model), query)
                if dense_needed and searchable
                else None
            )
            self.index.ensure_collection(state.index_name, state.dim)
            hits = (
                []
                if not searchable
                else self.index.search(
                    state.index_name,
                    mode=mode,
                    k=candidate_pool(k) if mode == "hybrid" or rerank or diversify else k,
                    query_text=query,
                    query_vector=vector,
                    hidden=snapshot.hidden_rows(),
                    # Rows another process changed moments ago may not be in a bounded-staleness read yet.
                    strong=time.time() - state.changed_at < FRESH_CHANGE_S,
                    fusion=HybridFusion(
                        self.settings.hybrid_fusion,
                        self.settings.fusion_dense_weight,
                        self.settings.rrf_k,
                        self.settings.fusion_heading_weight,
                    ),
                    constraint=retrieval_filter(principal, _compiled(filter)),
                )
            )
            # The catalog is authoritative: a changed ACL or a removed document is enforced here
            # even while its index rows are still being rewritten.
            docs = snapshot.documents([hit.doc_id for hit in hits])
            hits = [
                hit
                for hit in hits
                if permits(principal, doc := docs.get(hit.doc_id)) and doc is not None and doc.live == hit.version
            ]
        if mode == "hybrid" and self.settings.exact_phrase_promotion:
            hits = promote_exact_phrases(query, hits, len(hits) if rerank or diversify else k)
        elif not (rerank or diversify):
            hits = hits[:k]
        warnings: list[str] = []
        if mode != "dense" and (fallback := self.index.features.fallback_warning):
            warnings.append(fallback)
        if rerank or diversify:
            reordered = self.generation.reorder(
                query, hits, k, rerank=rerank, diversify=diversify, embedder=self.embedder_for(state.embed_model)
            )
            hits = reordered.hits
            warnings.extend(reordered.warnings)
        if principal is not None:  # retrievals made for a key are audited with what they returned
            self._record(principal, "search", collection=name, documents=sorted({h.doc_id for h in hits}))
        return SearchResult(hits=hits, warnings=warnings)

    def ask(
        self,
        question: str,
        *,
        collection: str | None = None,
        k: int = 8,
        principal: Principal | None = None,
        rerank: bool = False,
        diversify: bool = False,
        history: Sequence[Turn] = (),
    ) -> Answer:
        """A grounded answer to *question*, each sentence citing a passage, each citation verified.

        With ``CAIRN_LLM_BASE_URL`` set, an LLM writes it from the retrieved passages; otherwise it
        is extractive (the best supporting sentences). *history* holds the earlier turns of a
        conversation, oldest first: a follow-up is made standalone before retrieval.
        """
        return self.ask_stream(
            question,
            collection=collection,
            k=k,
            principal=principal,
            rerank=rerank,
            diversify=diversify,
            history=history,
        ).result()

    def ask_stream(
        self,
        question: str,
        *,
        collection: str | None = None,
        k: int = 8,
        principal: Principal | None = None,
        rerank: bool = False,
        diversify: bool = False,
        history: Sequence[Turn] = (),
    ) -> AnswerStream:
        """The same answer as `ask`, as text pieces while it is generated; ``.result()`` is the `Answer`.

        The LLM request is made before this returns, so an unreachable endpoint raises here.
        """
        if not question.strip():
            raise InvalidRequest("the question is empty; pass what you want to know")
        query = self.generation.standalone(question, history)
        found = self.search(
            query, collection=collection, k=k, mode="hybrid", principal=principal, rerank=rerank, diversify=diversify
        )
        model = self._state(self._collection(collection)).embed_model
        return self.generation.answer(
            query, found.hits, self.embedder_for(model), asked=question, warnings=found.warnings
        )

    # -- collections and documents ---------------------------------------------------------------
    def collection_names(self, *, principal: Principal | None = None) -> list[str]:
        """The collections a key may use: granted, and holding its tenant's documents or none (all for the host)."""
        return [
            name
            for name in self.catalog.collection_names()
            if principal is None
            or (principal.may_use(name) and self.catalog.tenant_standing(name, principal.tenant) != "foreign")
        ]

    def collections(self) -> list[CollectionInfo]:
        return [self.collection_info(name) for name in self.catalog.collection_names()]

    def collection_info(self, collection: str | None = None) -> CollectionInfo:
        name = self._collection(collection)
        state = self._state(name)
        documents, chunks = self.catalog.live_counts(name)
        return CollectionInfo(
            name=name,
            documents=documents,
            chunks=chunks,
            rows=self.index.count(state.index_name),
            embed_model=state.embed_model,
            dim=state.dim,
            engine=self.index.engine,
            engine_version=self.index.features.version,
            features=[*self.index.features.active, *self.index.collection_features(state.index_name)],
            retention=f"{state.retention.mode} {state.retention.days} days" if state.retention else None,
        )


def _compiled(user_filter: str | dict[str, object] | list[object] | None) -> str | None:
    if user_filter is None or (isinstance(user_filter, str) and not user_filter.strip()):
        return None
    parsed = parse_filter(user_filter) if isinstance(user_filter, str) else filter_from_json(user_filter)
    return compile_filter(parsed)
