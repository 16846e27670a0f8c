"""One Milvus collection per cairn collection: dense vectors, BM25 sparse vectors and metadata.

All engine access goes through pymilvus ``MilvusClient`` so the embedded engine (Milvus Lite)
and a Milvus server are driven by the same code.
"""

from __future__ import annotations

import json
import re
import threading
import time
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from cairn.errors import EngineError, InvalidRequest
from cairn.models import Chunk, Location, SearchHit
from cairn.vault.manifest import DocumentRecord, RowSet, VersionRecord

__all__ = ["IndexedDocument", "MilvusIndex", "SearchMode"]

SearchMode = Literal["hybrid", "dense", "keyword"]
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "dense", "keyword")
_OUTPUT_FIELDS = ["doc_id", "source", "text", "location", "metadata", "version"]
_HEX = re.compile(r"^[0-9a-f]{1,64}$")
# Milvus VARCHAR limit is counted in bytes; chunks are far below it (256 model tokens).
_MAX_TEXT_BYTES = 65_535
_INSERT_BATCH = 1000


class IndexedDocument:
    """The per-document metadata stored on each of its rows."""

    def __init__(self, *, doc_id: str, source: str, version: int, tenant: str, allowed: Sequence[str], mime: str):
        self.doc_id = doc_id
        self.source = source
        self.version = version
        self.tenant = tenant
        self.allowed = list(allowed)
        self.mime = mime

    @classmethod
    def of(cls, doc: DocumentRecord, version: VersionRecord) -> IndexedDocument:
        """The row metadata of one version of a document."""
        return cls(
            doc_id=doc.doc_id,
            source=doc.source,
            version=version.version,
            tenant=doc.tenant,
            allowed=doc.allowed,
            mime=version.mime,
        )


def _check_doc_id(doc_id: str) -> str:
    # Document ids are hex digests cairn makes; checking keeps them safe inside expressions.
    if not _HEX.match(doc_id):
        raise InvalidRequest(f"invalid document id {doc_id!r}")
    return doc_id


def _rowset_expr(rowset: RowSet) -> str:
    return f'(doc_id == "{_check_doc_id(rowset.doc_id)}" and version == {int(rowset.version)})'


def _exclude_expr(rowsets: Sequence[RowSet]) -> str:
    """A filter that drops the given row sets. Milvus Lite 2.5 rejects `not (...)`, so De Morgan."""
    return " and ".join(f'(doc_id != "{_check_doc_id(r.doc_id)}" or version != {int(r.version)})' for r in rowsets)


class MilvusIndex:
    """Schema, writes and the three search modes over one ``MilvusClient``."""

    def __init__(self, uri: str, *, token: str | None = None, dense_index: str = "FLAT") -> None:
        self.dense_index = dense_index
        with warnings.catch_warnings():
            # milvus-lite 2.5 imports the deprecated pkg_resources; the warning is not ours to fix.
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
            from pymilvus import MilvusClient

            self.uri = uri
            try:
                self.client: Any = MilvusClient(uri=uri, token=token or "")
            except Exception as exc:
                raise EngineError(
                    f"cannot open the Milvus engine at {uri}: {exc}. If another cairn process is using this "
                    "CAIRN_HOME, stop it or point CAIRN_HOME elsewhere"
                ) from exc
        self._ensured: set[str] = set()
        self._lock = threading.Lock()

    @staticmethod
    def engine_name(collection: str) -> str:
        return f"cairn_{collection}"

    @property
    def engine(self) -> str:
        return "milvus-lite" if self.uri.endswith(".db") else "milvus-server"

    # -- collections -------------------------------------------------------------------------
    def has_collection(self, collection: str) -> bool:
        return bool(self.client.has_collection(self.engine_name(collection)))

    def ensure_collection(self, collection: str, dim: int) -> None:
        name = self.engine_name(collection)
        with self._lock:
            if name in self._ensured:
                return
            if not self.client.has_collection(name):
                self._create(name, dim)
            self.client.load_collection(name)
            self._ensured.add(name)

    def _create(self, name: str, dim: int) -> None:
        from pymilvus import DataType, Function, FunctionType

        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("text", DataType.VARCHAR, max_length=_MAX_TEXT_BYTES, enable_analyzer=True)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=64)
        schema.add_field("source", DataType.VARCHAR, max_length=4096)
        schema.add_field("version", DataType.INT64)
        schema.add_field("tenant", DataType.VARCHAR, max_length=128)
        schema.add_field("allowed", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=256, max_length=256)
        schema.add_field("mime", DataType.VARCHAR, max_length=128)
        schema.add_field("location", DataType.JSON)
        schema.add_field("metadata", DataType.JSON)
        schema.add_field("created_at", DataType.INT64)
        schema.add_function(
            Function(
                name="text_bm25",
                function_type=FunctionType.BM25,
                input_field_names=["text"],
                output_field_names=["sparse"],
            )
        )
        params = self.client.prepare_index_params()
        params.add_index("dense", index_type=self.dense_index, metric_type="IP")
        params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        try:
            self.client.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")
        except Exception as exc:
            raise EngineError(f"cannot create the Milvus collection {name}: {exc}", collection=name) from exc

    def drop_collection(self, collection: str) -> None:
        name = self.engine_name(collection)
        with self._lock:
            if self.client.has_collection(name):
                self.client.drop_collection(name)
            self._ensured.discard(name)

    def count(self, collection: str) -> int:
        if not self.has_collection(collection):
            return 0
        rows = self.client.query(self.engine_name(collection), filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    # -- writes ------------------------------------------------------------------------------
    def insert(
        self,
        collection: str,
        document: IndexedDocument,
        chunks: Sequence[Chunk],
        vectors: npt.NDArray[np.float32],
        *,
        replace: bool = False,
    ) -> None:
        """Insert the rows of one document version; ``replace`` upserts them (same chunk ids, new metadata)."""
        now = int(time.time())
        rows = [
            {
                "chunk_id": chunk.chunk_id,
                "text": chunk.text,
                "dense": vectors[i].tolist(),
                "doc_id": document.doc_id,
                "source": document.source,
                "version": document.version,
                "tenant": document.tenant,
                "allowed": document.allowed,
                "mime": document.mime,
                "location": chunk.location.model_dump(mode="json", exclude={"label"}),
                "metadata": chunk.metadata,
                "created_at": now,
            }
            for i, chunk in enumerate(chunks)
        ]
        name = self.engine_name(collection)
        try:
            for lo in range(0, len(rows), _INSERT_BATCH):
                write = self.client.upsert if replace else self.client.insert
                write(name, rows[lo : lo + _INSERT_BATCH])
        except Exception as exc:
            raise EngineError(f"Milvus refused rows of {document.source}: {exc}", collection=collection) from exc

    def delete_rows(self, collection: str, rowsets: Sequence[RowSet]) -> None:
        if not rowsets or not self.has_collection(collection):
            return
        expr = " or ".join(_rowset_expr(r) for r in rowsets)
        try:
            self.client.delete(self.engine_name(collection), filter=expr)
        except Exception as exc:
            raise EngineError(f"Milvus could not delete rows: {exc}", collection=collection) from exc

    def live_rowsets(self, collection: str) -> set[RowSet]:
        """Every (doc_id, version) that has rows in the index; for verification and tests."""
        return set(self.indexed_chunks(collection).values())

    def indexed_chunks(self, collection: str) -> dict[str, RowSet]:
        """Every row of the collection: chunk id → the document version it belongs to."""
        if not self.has_collection(collection):
            return {}
        found: dict[str, RowSet] = {}
        iterator = self.client.query_iterator(
            self.engine_name(collection), batch_size=1000, filter="", output_fields=["chunk_id", "doc_id", "version"]
        )
        try:
            while batch := iterator.next():
                found.update({r["chunk_id"]: RowSet(doc_id=r["doc_id"], version=r["version"]) for r in batch})
        finally:
            iterator.close()
        return found

    def delete_chunks(self, collection: str, chunk_ids: Sequence[str]) -> None:
        """Delete rows by chunk id (ids are hex hashes, so they are quoted safely)."""
        if not chunk_ids or not self.has_collection(collection):
            return
        for chunk in chunk_ids:
            if not re.fullmatch(r"[0-9a-f]{1,64}", chunk):
                raise EngineError(f"invalid chunk id {chunk!r}", collection=collection)
        name = self.engine_name(collection)
        try:
            for lo in range(0, len(chunk_ids), _INSERT_BATCH):
                batch = chunk_ids[lo : lo + _INSERT_BATCH]
                self.client.delete(name, filter="chunk_id in [" + ", ".join(f'"{c}"' for c in batch) + "]")
        except Exception as exc:
            raise EngineError(f"Milvus could not delete rows: {exc}", collection=collection) from exc

    # -- search ------------------------------------------------------------------------------
    def search(
        self,
        collection: str,
        *,
        mode: SearchMode,
        k: int,
        query_text: str,
        query_vector: npt.NDArray[np.float32] | None,
        hidden: Sequence[RowSet] = (),
        rrf_k: int = 60,
        constraint: str = "",
    ) -> list[SearchHit]:
        """Search; ``constraint`` (from `cairn.access.retrieval_filter`) is ANDed with the hidden-row exclusion."""
        if mode not in SEARCH_MODES:
            raise InvalidRequest(f"unknown search mode {mode!r}: choose one of {', '.join(SEARCH_MODES)}")
        name = self.engine_name(collection)
        expr = " and ".join(f"({part})" for part in (_exclude_expr(hidden), constraint) if part)
        try:
            if mode == "dense":
                assert query_vector is not None
                result = self.client.search(
                    name,
                    data=[query_vector.tolist()],
                    anns_field="dense",
                    limit=k,
                    filter=expr,
                    search_params={"metric_type": "IP"},
                    output_fields=_OUTPUT_FIELDS,
                )
            elif mode == "keyword":
                result = self.client.search(
                    name,
                    data=[query_text],
                    anns_field="sparse",
                    limit=k,
                    filter=expr,
                    search_params={"metric_type": "BM25"},
                    output_fields=_OUTPUT_FIELDS,
                )
            else:
                from pymilvus import AnnSearchRequest, RRFRanker

                assert query_vector is not None
                # Each leg fetches more than k so fusion can promote what one leg ranks lower.
                depth = max(k * 3, 30)
                requests = [
                    AnnSearchRequest([query_vector.tolist()], "dense", {"metric_type": "IP"}, depth, expr=expr),
                    AnnSearchRequest([query_text], "sparse", {"metric_type": "BM25"}, depth, expr=expr),
                ]
                result = self.client.hybrid_search(
                    name, reqs=requests, ranker=RRFRanker(rrf_k), limit=k, output_fields=_OUTPUT_FIELDS
                )
        except Exception as exc:
            if "NaN or Inf" in str(exc):
                # Milvus Lite cannot score BM25 over an index without rows: nothing matches.
                return []
            raise EngineError(f"search in collection {collection!r} failed: {exc}", collection=collection) from exc
        return [_to_hit(hit) for hit in result[0]]


def _to_hit(hit: Any) -> SearchHit:
    entity = hit["entity"]
    location = _json_field(entity.get("location"))
    return SearchHit(
        doc_id=entity["doc_id"],
        source=entity["source"],
        chunk_id=hit["id"] if "id" in hit else hit["chunk_id"],
        score=float(hit["distance"]),
        text=entity["text"],
        location=Location.model_validate(location),
        version=int(entity["version"]),
        metadata=_json_field(entity.get("metadata")),
    )


def _json_field(value: Any) -> dict[str, Any]:
    """A JSON field as a dict: Milvus returns JSON fields decoded or as text, depending on version."""
    if not value:
        return {}
    decoded = json.loads(value) if isinstance(value, str | bytes) else value
    return dict(decoded)
