"""The vault: original document bytes, chunk files, the embedding cache and manifests.

Layout under the object store::

    blobs/ab/abcdef...                        original bytes, content-addressed by sha256
    collections/<c>/collection.json           the collection's model, dimension and retention
    collections/<c>/docs/<doc_id>/v000001.parquet   chunks, metadata and embeddings of a version
    collections/<c>/docs/<doc_id>/v000001.json      the version's record: source, bytes, tenant, ACL
    collections/<c>/events/<time>-<id>.json   later changes: ACL changes, take-downs, purges
    collections/<c>/manifest.json             a collection's state before the catalog (migrated once)
    embeddings/<model>/<shard>.parquet        cache: (text sha256 -> vector) per model

Everything Milvus holds can be rebuilt from here without re-embedding, and the catalog from the
version records and events (`cairn rebuild --catalog`).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from cairn.catalog.records import CollectionState, DocumentRecord, Retention, VersionRecord
from cairn.errors import IntegrityError, NotFound, StorageError
from cairn.models import Chunk, Location
from cairn.vault.backend import ObjectStore
from cairn.vault.manifest import Manifest

__all__ = ["EmbeddingCache", "Vault", "sha256_hex"]

Vector = npt.NDArray[np.float32]


def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def _vector_column(matrix: Vector) -> pa.FixedSizeListArray:
    """An (n, dim) float32 matrix as an Arrow column of fixed-size lists."""
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1), pa.float32()), matrix.shape[1])


def _vector_matrix(table: pa.Table) -> Vector:
    """The table's ``embedding`` column back as an (n, dim) float32 matrix."""
    column = table.column("embedding").combine_chunks()
    flat = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    return flat.reshape(table.num_rows, column.type.list_size)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _model_slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", model).strip("_") or "model"


class Vault:
    """Typed access to everything cairn keeps in object storage."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    # -- original bytes -------------------------------------------------------------------
    def put_blob(self, data: bytes) -> str:
        digest = sha256_hex(data)
        key = self._blob_key(digest)
        if not self.store.put_if_absent(key, data):
            # Reused: written again, so its write time is now and `verify` can never judge it an old orphan
            # while this writer has yet to record the version that keeps it (cairn.vault.orphans).
            self.store.put(key, data)
        return digest

    def get_blob(self, digest: str) -> bytes:
        data = self.store.get(self._blob_key(digest))
        if sha256_hex(data) != digest:
            raise IntegrityError(
                f"blob {digest} in {self.store.describe()} is corrupt (its sha256 no longer matches); "
                "restore it from a backup or re-ingest the source file",
                key=self._blob_key(digest),
            )
        return data

    def retain_version(self, version: VersionRecord, retention: Retention) -> None:
        """Lock a version's original bytes and chunk file for the retention's days from now."""
        until = datetime.now(UTC) + timedelta(days=retention.days)
        for key in (self._blob_key(version.sha256), version.chunks_key):
            self.store.retain(key, retention.mode, until)

    def purge_version(self, version: VersionRecord, *, keep_blob: bool) -> None:
        """Delete a version's chunk file, and its original bytes unless another version shares them."""
        self.store.delete(version.chunks_key)
        self.store.delete(re.sub(r"(\.g\d+)?\.parquet$", ".json", version.chunks_key))
        if not keep_blob:
            self.store.delete(self._blob_key(version.sha256))

    @staticmethod
    def _blob_key(digest: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise StorageError(f"invalid blob digest {digest!r}")
        return f"blobs/{digest[:2]}/{digest}"

    # -- manifests ------------------------------------------------------------------------
    @staticmethod
    def manifest_key(collection: str) -> str:
        return f"collections/{collection}/manifest.json"

    def load_manifest(self, collection: str) -> Manifest | None:
        try:
            raw = self.store.get(self.manifest_key(collection))
        except NotFound:
            return None
        try:
            return Manifest.model_validate_json(raw)
        except ValueError as exc:
            raise StorageError(
                f"the manifest of collection {collection!r} in {self.store.describe()} is unreadable: {exc}; "
                "run `cairn verify --repair` once it exists, or restore the file from a backup",
                key=self.manifest_key(collection),
            ) from exc

    def save_manifest(self, manifest: Manifest) -> None:
        """Write a pre-catalog manifest (only tests that build an old vault need this)."""
        self.store.put(self.manifest_key(manifest.collection), manifest.model_dump_json(indent=1).encode())

    def list_collections(self) -> list[str]:
        """Collections with a pre-catalog manifest in this vault."""
        return [key.split("/")[1] for key in self.store.list("collections/") if key.endswith("/manifest.json")]

    # -- records the catalog can be rebuilt from ------------------------------------------------
    def write_collection_record(self, state: CollectionState) -> None:
        self.store.put(f"collections/{state.name}/collection.json", state.model_dump_json().encode())

    def collection_records(self) -> list[CollectionState]:
        return [
            CollectionState.model_validate_json(self.store.get(key))
            for key in self.store.list("collections/")
            if key.endswith("/collection.json")
        ]

    def write_version_record(self, state: CollectionState, doc: DocumentRecord, version: VersionRecord) -> None:
        """The immutable record of one version, beside its chunk file: enough to rebuild the catalog."""
        record = {
            "doc_id": doc.doc_id,
            "source": doc.source,
            "tenant": doc.tenant,
            "allowed": doc.allowed,
            "embed_model": state.embed_model,
            **version.model_dump(),
        }
        key = f"collections/{state.name}/docs/{doc.doc_id}/v{version.version:06d}.json"
        self.store.put(key, json.dumps(record, ensure_ascii=False).encode())

    def version_records(self, collection: str) -> list[dict[str, object]]:
        prefix = f"collections/{collection}/docs/"
        return [
            json.loads(self.store.get(key))
            for key in self.store.list(prefix)
            if re.fullmatch(r"v\d{6}\.json", key.rsplit("/", 1)[-1])
        ]

    def record_event(self, collection: str, kind: str, doc_id: str, **fields: object) -> None:
        """An immutable record of a change to a document after its version was stored (ACL, take-down, purge)."""
        stamp = time.time()
        event = {"kind": kind, "doc_id": doc_id, "at": stamp, **fields}
        key = f"collections/{collection}/events/{stamp:017.6f}-{uuid.uuid4().hex[:12]}.json"
        self.store.put(key, json.dumps(event, ensure_ascii=False).encode())

    def events(self, collection: str) -> list[dict[str, object]]:
        """The collection's change records, oldest first."""
        return [json.loads(self.store.get(key)) for key in sorted(self.store.list(f"collections/{collection}/events/"))]

    def forget_version_files(self, collection: str, doc_id: str, version: int, generation: int) -> None:
        """Delete the files of a version the catalog dropped before it was ever live (a duplicate)."""
        for key in (
            self.chunks_key(collection, doc_id, version, generation),
            f"collections/{collection}/docs/{doc_id}/v{version:06d}.json",
        ):
            self.store.delete(key)

    def delete_collection(self, collection: str) -> None:
        """Forget a collection's manifest and chunk files. Original blobs stay (immutable)."""
        for key in list(self.store.list(f"collections/{collection}/")):
            self.store.delete(key)

    # -- chunk files ----------------------------------------------------------------------
    @staticmethod
    def chunks_key(collection: str, doc_id: str, version: int, generation: int = 0) -> str:
        """Where a version's chunks and vectors live; each index generation (model) has its own file."""
        suffix = f".g{generation}" if generation else ""
        return f"collections/{collection}/docs/{doc_id}/v{version:06d}{suffix}.parquet"

    def write_chunks(self, key: str, chunks: Sequence[Chunk], vectors: Vector, *, metadata: dict[str, str]) -> None:
        table = pa.table(
            {
                "chunk_id": [c.chunk_id for c in chunks],
                "ordinal": pa.array([c.ordinal for c in chunks], pa.int32()),
                "text": [c.text for c in chunks],
                "text_sha256": [sha256_hex(c.text) for c in chunks],
                "token_count": pa.array([c.token_count for c in chunks], pa.int32()),
                "location": [c.location.model_dump_json(exclude={"label"}) for c in chunks],
                "metadata": [json.dumps(c.metadata, ensure_ascii=False) for c in chunks],
                "embedding": _vector_column(vectors),
            },
            metadata={k.encode(): v.encode() for k, v in metadata.items()},
        )
        self.store.put(key, _parquet_bytes(table))

    def read_chunks(self, key: str, *, doc_id: str, version: int) -> tuple[list[Chunk], Vector]:
        try:
            table = pq.read_table(io.BytesIO(self.store.get(key)))
        except (pa.ArrowException, OSError) as exc:
            raise IntegrityError(f"chunk file {key} in {self.store.describe()} is unreadable: {exc}", key=key) from exc
        columns = table.to_pydict()
        for text, digest in zip(columns["text"], columns.get("text_sha256", columns["text"]), strict=True):
            if "text_sha256" in columns and sha256_hex(text) != digest:
                raise IntegrityError(
                    f"chunk file {key} in {self.store.describe()} is corrupt: a chunk's text does not match "
                    "its recorded sha256",
                    key=key,
                )
        chunks = [
            Chunk(
                chunk_id=columns["chunk_id"][i],
                doc_id=doc_id,
                version=version,
                ordinal=columns["ordinal"][i],
                text=columns["text"][i],
                location=Location.model_validate_json(columns["location"][i]),
                token_count=columns["token_count"][i],
                metadata=json.loads(columns["metadata"][i]) if "metadata" in columns else {},
            )
            for i in range(table.num_rows)
        ]
        return chunks, _vector_matrix(table)


class EmbeddingCache:
    """Vectors already computed, keyed by (model, tenant, sha256 of the chunk text), kept in the vault.

    Each tenant has a cache of its own: a shared one would tell a tenant, by how fast its upload is
    embedded, whether another tenant already holds the exact same text. The cost is that text two
    tenants both hold is embedded once for each. New vectors are buffered and written as one Parquet
    shard per ``flush()``; shards are read lazily once per process.
    """

    def __init__(self, vault: Vault, model: str, tenant: str = "default") -> None:
        self._store = vault.store
        self._prefix = f"embeddings/{_model_slug(model)}/{_model_slug(tenant)}/"
        self._known: dict[str, Vector] | None = None
        self._new: dict[str, Vector] = {}
        self._lock = threading.Lock()

    def _load(self) -> dict[str, Vector]:
        if self._known is None:
            known: dict[str, Vector] = {}
            for key in self._store.list(self._prefix):
                table = pq.read_table(io.BytesIO(self._store.get(key)))
                known.update(zip(table.column("text_sha256").to_pylist(), _vector_matrix(table), strict=True))
            self._known = known
        return self._known

    def get_many(self, text_hashes: Iterable[str]) -> dict[str, Vector]:
        with self._lock:
            known = self._load()
            found: dict[str, Vector] = {}
            for digest in text_hashes:
                vector = self._new.get(digest)
                if vector is None:
                    vector = known.get(digest)
                if vector is not None:
                    found[digest] = vector
            return found

    def add_many(self, entries: dict[str, Vector]) -> None:
        with self._lock:
            self._new.update(entries)

    def flush(self) -> None:
        with self._lock:
            if not self._new:
                return
            hashes = list(self._new)
            matrix = np.stack([self._new[h] for h in hashes]).astype(np.float32)
            table = pa.table({"text_sha256": hashes, "embedding": _vector_column(matrix)})
            self._store.put(f"{self._prefix}{uuid.uuid4().hex}.parquet", _parquet_bytes(table))
            self._load().update(self._new)
            self._new.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._load()) + len(self._new)
