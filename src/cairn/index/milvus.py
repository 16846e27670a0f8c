"""One Milvus collection per cairn collection: dense vectors, BM25 sparse vectors and metadata.

All engine access goes through pymilvus ``MilvusClient`` so the embedded engine (Milvus Lite)
and a Milvus server are driven by the same code.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from cairn.chunking import with_heading_path
from cairn.errors import EngineError, IndexUnavailable, InsecureEngine, InvalidRequest
from cairn.index.bulk import BulkLoader
from cairn.index.features import EngineFeatures, detect_features
from cairn.index.fusion import DEFAULT_FUSION, HybridFusion, weighted_fusion
from cairn.index.lite import secure_lite_files, start_lite
from cairn.localfiles import private_dir
from cairn.models import Chunk, Location, SearchHit
from cairn.parse.text import clean_text
from cairn.settings import Settings
from cairn.vault.manifest import DocumentRecord, RowSet, VersionRecord

__all__ = ["IndexedDocument", "MilvusIndex", "RowBatch", "SearchMode", "open_index", "tls_options"]

SearchMode = Literal["hybrid", "dense", "keyword"]
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "dense", "keyword")
_OUTPUT_FIELDS = ["doc_id", "source", "text", "location", "metadata", "version"]
_HEX = re.compile(r"^[0-9a-f]{1,64}$")
# Milvus VARCHAR limit is counted in bytes; chunks are far below it (256 model tokens).
_MAX_TEXT_BYTES = 65_535
_MAX_HEADINGS_BYTES = 4096  # a heading path longer than this is cut for the heading index
_INSERT_BATCH = 1000
_DELETE_BATCH = 32  # row sets per delete request
_MAX_GATHERED_ROWS = 50_000
# After this process writes or deletes, its reads are Strong for this long; otherwise the configured level.
_STRONG_AFTER_WRITE_S = 10.0
_INDEX_WAIT_S = 60.0  # how long a process waits for the indexes of a collection another process is creating
_log = logging.getLogger(__name__)
_T = TypeVar("_T")
# Calls that read (a query waits on them): bounded by the read timeout. Every other call to the server is a write or
# an administrative call (insert, load, create...) and gets the longer write timeout.
_READ_CALLS = frozenset(
    {
        "search",
        "hybrid_search",
        "query",
        "query_iterator",
        "get",
        "has_collection",
        "list_collections",
        "describe_collection",
        "describe_alias",
        "list_aliases",
        "get_server_version",
        "get_collection_stats",
        "get_load_state",
    }
)
_WRITE_CALLS = frozenset(
    {
        "insert",
        "upsert",
        "delete",
        "flush",
        "load_collection",
        "release_collection",
        "create_collection",
        "drop_collection",
        "create_alias",
        "alter_alias",
        "drop_alias",
        "create_index",
        "compact",
    }
)
# What pymilvus and gRPC say when the server is down, restarting or still recovering (lower case).
_UNAVAILABLE_SIGNS = (
    "retry timeout",
    "unavailable",
    "deadline",
    "fail connecting",
    "failed to connect",
    "connection refused",
    "not ready",
    "not healthy",
    "no available",
    "node not found",
    "channel not",
)


_quiet_lock = threading.Lock()
_quiet_depth = 0  # quiet_pymilvus blocks open in this process (threads overlap: the level is restored by the last)
_quiet_level = logging.NOTSET


@contextlib.contextmanager
def quiet_pymilvus() -> Iterator[None]:
    """pymilvus logs every failed RPC at ERROR; an expected refusal (a probe) should not reach the user's terminal."""
    global _quiet_depth, _quiet_level
    logger = logging.getLogger("pymilvus")
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_level = logger.level
            logger.setLevel(logging.CRITICAL)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                logger.setLevel(_quiet_level)


def _port_open(uri: str) -> bool:
    """Whether the server's port accepts a connection: pymilvus reports a refused password or TLS handshake
    in the same words as a server that is down, and only the latter is an outage."""
    parsed = urlsplit(uri)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 19530), timeout=2):
            return True
    except OSError:
        return False


def is_unavailable(exc: BaseException) -> bool:
    """Whether a pymilvus error means the server did not answer (down, restarting, unreachable), not a refusal."""
    if isinstance(exc, IndexUnavailable):
        return True
    text = str(exc).lower()
    return any(sign in text for sign in _UNAVAILABLE_SIGNS)


class BoundedClient:
    """A ``MilvusClient`` whose every server call has a timeout, and whose "server not answering" errors are
    `IndexUnavailable` naming the server and what to do.

    pymilvus retries a call to an unreachable server for minutes unless the call carries a ``timeout``; a query
    should instead fail within seconds, so that the service can answer 503 ``index_unavailable``.

    After an outage, a connection that lived through the server's restart can be left in a state the new server
    refuses (seen with pymilvus 3.0 and Milvus 2.3.5: every search of one process failed with an internal plan
    error while other processes searched fine). So once an outage has been seen, the first other error of a read
    replaces the connection with a new one (``connect``) and tries the call once more.
    """

    def __init__(self, connect: Callable[[], Any], uri: str, *, read_timeout_s: float, write_timeout_s: float) -> None:
        self._connect = connect
        self.raw = connect()
        self.uri = uri
        self.read_timeout_s = read_timeout_s
        self.write_timeout_s = write_timeout_s
        self._outage_seen = False
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if name in _READ_CALLS:
            return self._bounded(name, self.read_timeout_s, read=True)
        if name in _WRITE_CALLS:
            return self._bounded(name, self.write_timeout_s, read=False)
        return getattr(self.raw, name)

    def _bounded(self, name: str, timeout_s: float, *, read: bool) -> Any:
        def bounded(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout_s)
            raw = self.raw
            try:
                return self._call(raw, name, args, kwargs)
            except IndexUnavailable:
                raise
            except Exception:
                if not (read and self._outage_seen):
                    raise
                _log.warning("a read from the Milvus server at %s failed after an outage: reconnecting", self.uri)
                return self._call(self._reconnect(raw), name, args, kwargs)

        return bounded

    def _call(self, raw: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return getattr(raw, name)(*args, **kwargs)
        except Exception as exc:
            if is_unavailable(exc):
                self._outage_seen = True
                raise IndexUnavailable(
                    f"the Milvus server at {self.uri} is unavailable ({name} found it down, restarting or "
                    f"unreachable, giving up after at most {kwargs['timeout']:g} s); try again shortly, and "
                    "check the server if this lasts"
                ) from exc
            raise

    def _reconnect(self, stale: Any) -> Any:
        with self._lock:
            if self.raw is stale:  # another thread may have reconnected already
                with contextlib.suppress(Exception):
                    stale.close()
                self.raw = self._connect()
                self._outage_seen = False
            return self.raw


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

    def __init__(
        self,
        uri: str,
        *,
        token: str | None = None,
        dense_index: str = "FLAT",
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        bm25_analyzer: str = "standard",
        keyword_context: bool = False,
        heading_index: bool = True,
        tls_ca: Path | None = None,
        insecure: bool = False,
        consistency: str = "Bounded",
        read_timeout_s: float = 5.0,
        write_timeout_s: float = 60.0,
    ) -> None:
        self.dense_index = dense_index
        self.bm25_params = {"bm25_k1": bm25_k1, "bm25_b": bm25_b}
        self.bm25_analyzer = bm25_analyzer
        # New collections get a `keywords` field (heading path + text) as the keyword index's input.
        self.keyword_context = keyword_context
        # New collections also index each chunk's headings (title and section path) for a third hybrid leg.
        self.heading_index = heading_index
        self._field_names: dict[str, frozenset[str]] = {}  # engine collection -> its fields (asked once)
        self.uri = uri
        self.token = token or ""
        self.consistency = consistency
        self.tls_options = tls_options(uri, tls_ca)
        with warnings.catch_warnings():
            # milvus-lite 2.5 imports the deprecated pkg_resources; the warning is not ours to fix.
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
            from pymilvus import MilvusClient

            try:
                if self.engine == "milvus-lite":
                    start_lite(Path(uri))  # its socket and logs beside the database, not in /tmp

                def connect(dedicated: bool = True) -> Any:
                    with quiet_pymilvus():
                        return MilvusClient(
                            uri=uri, token=token or "", timeout=read_timeout_s, dedicated=dedicated, **self.tls_options
                        )

                # The embedded engine runs in this process and has nothing to wait for; a server may be down.
                self.client: Any = (
                    connect(dedicated=False)
                    if self.engine == "milvus-lite"
                    else BoundedClient(connect, uri, read_timeout_s=read_timeout_s, write_timeout_s=write_timeout_s)
                )
            except IndexUnavailable:
                raise
            except Exception as exc:
                if self.engine == "milvus-server" and is_unavailable(exc) and not _port_open(uri):
                    raise IndexUnavailable(
                        f"cannot reach the Milvus server at {uri}: {exc}; start it (or check CAIRN_MILVUS_URI and "
                        "the network), then try again"
                    ) from exc
                raise EngineError(
                    f"cannot open the Milvus engine at {uri}: {exc}. "
                    + (
                        "Check CAIRN_MILVUS_URI, CAIRN_MILVUS_TOKEN (user:password) and CAIRN_MILVUS_TLS_CA"
                        if self.engine == "milvus-server"
                        else "If another cairn process is using this CAIRN_HOME, stop it or point CAIRN_HOME elsewhere"
                    )
                ) from exc
        if self.engine == "milvus-lite":
            secure_lite_files(Path(uri))
        self.features = self._detect()
        if self.engine == "milvus-server" and not insecure:
            self._refuse_default_root()
        self._ensured: set[str] = set()
        self._lock = threading.Lock()
        # A weighted hybrid search sends its legs at once from these threads (made on the first such search).
        self.concurrent_legs = True
        self._search_threads: ThreadPoolExecutor | None = None
        self._threads_lock = threading.Lock()  # not _lock, which a collection's first load holds for seconds
        self._strong_until = 0.0
        self.bulk: BulkLoader | None = None

    def close(self) -> None:
        """Close the connection and the search threads (a search still running finishes first)."""
        with self._threads_lock:
            threads, self._search_threads = self._search_threads, None
        if threads is not None:
            threads.shutdown(wait=True)
        self.client.close()

    def _detect(self) -> EngineFeatures:
        if self.engine == "milvus-lite":
            from importlib.metadata import version

            return detect_features("milvus-lite", version("milvus-lite"))
        try:
            with quiet_pymilvus():
                found = str(self.client.get_server_version())
        except IndexUnavailable:
            raise
        except Exception as exc:
            raise EngineError(f"cannot read the version of the Milvus server at {self.uri}: {exc}") from exc
        features = detect_features("milvus-server", found)
        if features.fallback_warning:
            _log.warning("%s", features.fallback_warning)
        return features

    def _refuse_default_root(self) -> None:
        """Refuse a server where the factory `root:Milvus` login works: anyone could read or drop every collection."""
        from pymilvus import MilvusClient

        try:
            with quiet_pymilvus():
                probe = MilvusClient(uri=self.uri, token="root:Milvus", **self.tls_options)
                probe.list_collections()
                probe.close()
        except Exception:
            return  # refused: the default password was changed (or authentication is on and it is wrong)
        raise InsecureEngine(
            f"the Milvus server at {self.uri} still accepts the default root:Milvus login (or has authentication "
            "off), so anyone who can reach it can read or drop every collection. Enable "
            "common.security.authorizationEnabled, change the root password, and connect as a dedicated user "
            "(CAIRN_MILVUS_TOKEN=user:password); or pass --insecure (CAIRN_MILVUS_INSECURE=1) for a throw-away server"
        )

    @staticmethod
    def engine_name(collection: str) -> str:
        return f"cairn_{collection}"

    @staticmethod
    def alias_name(collection: str) -> str:
        """The alias that names a collection's current generation (upper case cannot clash with a collection)."""
        return f"cairn_{collection}_LIVE"

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
                if self.features.aliases and "_G" not in collection:
                    self._point_alias(collection, collection)
            self._load(name)
            self._ensured.add(name)

    def _loaded(self, name: str) -> None:
        """Load the engine collection once per process: a restarted server holds collections unloaded for a while."""
        with self._lock:
            if name not in self._ensured:
                self._load(name)
                self._ensured.add(name)

    def _load(self, name: str) -> None:
        """Load an engine collection, waiting while another process that has just created it makes its indexes.

        Milvus creates a collection and then its indexes; a process that finds the collection in between
        cannot load it yet ("index not found")."""
        deadline = time.monotonic() + _INDEX_WAIT_S
        while True:
            try:
                with quiet_pymilvus():  # a refusal is raised (or waited out) here, not logged
                    self.client.load_collection(name)
                return
            except IndexUnavailable:
                raise
            except Exception as exc:
                if "index not found" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise EngineError(
                        f"the Milvus collection {name} has had no index for {_INDEX_WAIT_S:.0f} s: the process that "
                        "created it stopped before indexing it. It holds no rows; drop it in Milvus and ingest again",
                        collection=name,
                    ) from exc
                time.sleep(0.2)

    def point_alias(self, collection: str, index_name: str) -> None:
        """Point the collection's alias at the engine collection ``index_name`` in one step (a reindex switch)."""
        if self.features.aliases:
            self._point_alias(collection, index_name)

    def _point_alias(self, collection: str, index_name: str) -> None:
        alias, target = self.alias_name(collection), self.engine_name(index_name)
        try:
            with quiet_pymilvus():
                if alias in self.client.list_aliases(target).get("aliases", []):
                    return
                try:
                    self.client.alter_alias(target, alias)
                except Exception:
                    self.client.create_alias(target, alias)
        except IndexUnavailable:
            raise
        except Exception as exc:
            raise EngineError(f"cannot point alias {alias} at {target}: {exc}", collection=collection) from exc

    def alias_target(self, collection: str) -> str | None:
        """The engine collection the collection's alias names, or None (no alias, or an engine without them)."""
        if not self.features.aliases:
            return None
        try:
            with quiet_pymilvus():
                described = self.client.describe_alias(self.alias_name(collection))
        except Exception:
            return None
        return str(described.get("collection_name")) if described else None

    def _create(self, name: str, dim: int) -> None:
        from pymilvus import DataType, Function, FunctionType

        bm25 = self.features.bm25
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=64)
        # The keyword index analyses `text`, or in a collection made with keyword context a `keywords` field:
        # the chunk's heading path, then its text (`keyword_text`).
        keywords = bm25 and self.keyword_context
        analysed = {"enable_analyzer": True, "analyzer_params": {"type": self.bm25_analyzer}}
        schema.add_field(
            "text", DataType.VARCHAR, max_length=_MAX_TEXT_BYTES, **(analysed if bm25 and not keywords else {})
        )
        if keywords:
            schema.add_field("keywords", DataType.VARCHAR, max_length=_MAX_TEXT_BYTES, **analysed)
        # Each BM25 index: its sparse field, the function that fills it, and the text field that function reads.
        bm25_indexes = [("sparse", "text_bm25", "keywords" if keywords else "text")] if bm25 else []
        if bm25 and self.heading_index:
            schema.add_field("headings", DataType.VARCHAR, max_length=_MAX_HEADINGS_BYTES, **analysed)
            bm25_indexes.append(("headings_sparse", "headings_bm25", "headings"))
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
        for sparse, _, _ in bm25_indexes:
            schema.add_field(sparse, DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=64)
        schema.add_field("source", DataType.VARCHAR, max_length=4096)
        schema.add_field("version", DataType.INT64)
        # Tenant as the partition key: each tenant's rows sit in their own partitions, and a search
        # filtered by tenant (every search made for a key is) reads only those.
        schema.add_field("tenant", DataType.VARCHAR, max_length=128, is_partition_key=self.features.partition_key)
        schema.add_field("allowed", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=256, max_length=256)
        schema.add_field("mime", DataType.VARCHAR, max_length=128)
        schema.add_field("location", DataType.JSON)
        schema.add_field("metadata", DataType.JSON)
        schema.add_field("created_at", DataType.INT64)
        for sparse, function, source in bm25_indexes:
            schema.add_function(
                Function(
                    name=function,
                    function_type=FunctionType.BM25,
                    input_field_names=[source],
                    output_field_names=[sparse],
                )
            )
        params = self.client.prepare_index_params()
        params.add_index("dense", index_type=self.dense_index, metric_type="IP")
        for sparse, _, _ in bm25_indexes:
            params.add_index(sparse, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=self.bm25_params)
        try:
            self.client.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")
        except IndexUnavailable:
            raise
        except Exception as exc:
            raise EngineError(f"cannot create the Milvus collection {name}: {exc}", collection=name) from exc

    def _has_field(self, name: str, field: str) -> bool:
        """Whether engine collection *name* has *field*: `keywords` (keyword context) or `headings` (a heading index).

        Both are fixed when a collection is created, so each collection is described once per process."""
        if name not in self._field_names:
            fields = self.client.describe_collection(name).get("fields", [])
            self._field_names[name] = frozenset(str(f.get("name")) for f in fields)
        return field in self._field_names[name]

    def drop_collection(self, collection: str) -> None:
        name = self.engine_name(collection)
        self._field_names.pop(name, None)
        with self._lock:
            if self.client.has_collection(name):
                if self.features.aliases:
                    # An alias pins its collection: drop the aliases that name this one first.
                    with quiet_pymilvus(), contextlib.suppress(Exception):
                        for alias in self.client.list_aliases(name).get("aliases", []):
                            self.client.drop_alias(alias)
                self.client.drop_collection(name)
            self._ensured.discard(name)

    def count(self, collection: str) -> int:
        if not self.has_collection(collection):
            return 0
        self._loaded(self.engine_name(collection))
        rows = self.client.query(
            self.engine_name(collection), filter="", output_fields=["count(*)"], **self._read_consistency(strong=True)
        )
        return int(rows[0]["count(*)"])

    def collection_features(self, collection: str) -> list[str]:
        """The optional indexes a collection was created with: `heading_index` (the headings of hybrid
        search) and `keyword_heading_context` (a `keywords` field); both are fixed at creation."""
        if not self.has_collection(collection):
            return []
        name = self.engine_name(collection)
        fields = {"heading_index": "headings", "keyword_heading_context": "keywords"}
        return [feature for feature, field in fields.items() if self._has_field(name, field)]

    def _read_consistency(self, *, strong: bool = False) -> dict[str, str]:
        """The consistency level of one read: Strong right after this process wrote or deleted, else the setting."""
        if not self.features.consistency_per_read:
            return {}
        if strong or time.monotonic() < self._strong_until:
            return {"consistency_level": "Strong"}
        return {"consistency_level": self.consistency}

    def _wrote(self) -> None:
        self._strong_until = time.monotonic() + _STRONG_AFTER_WRITE_S

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
        rows = self.rows_of(document, chunks, vectors)
        self.write_rows(collection, rows, replace=replace, what=document.source)

    @staticmethod
    def rows_of(
        document: IndexedDocument, chunks: Sequence[Chunk], vectors: npt.NDArray[np.float32]
    ) -> list[dict[str, Any]]:
        """The engine rows of one document version."""
        now = int(time.time())
        return [
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

    def complete_rows(self, collection: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """*rows* with the text fields the collection indexes besides `text`, made from each row's text and
        location: `keywords` (keyword context) and `headings` (the heading index), where it has them.

        Every writer of rows goes through this (`write_rows` does), so no row lacks a field its collection has."""
        name = self.engine_name(collection)
        if self._has_field(name, "keywords"):
            rows = [{**row, "keywords": keyword_text(row)} for row in rows]
        if self._has_field(name, "headings"):
            rows = [{**row, "headings": heading_text(row)} for row in rows]
        return rows

    def write_rows(
        self, collection: str, rows: list[dict[str, Any]], *, replace: bool = False, what: str = "a batch"
    ) -> None:
        """Write rows: a large batch through bulk import from the object store (when configured), else inserts."""
        name = self.engine_name(collection)
        try:
            rows = self.complete_rows(collection, rows)
            if self.bulk is not None and not replace and len(rows) >= self.bulk.min_rows:
                self.bulk.load(self, name, rows)
            elif replace and self.features.partition_key and not self.features.upsert_keeps_partition:
                # An upsert would land in the wrong partition here (see `EngineFeatures`): delete, then insert.
                # A search between the two may miss these rows for that moment; none can see stale access.
                for lo in range(0, len(rows), _INSERT_BATCH):
                    part = rows[lo : lo + _INSERT_BATCH]
                    ids = ", ".join(json.dumps(row["chunk_id"]) for row in part)
                    self.client.delete(name, filter=f"chunk_id in [{ids}]")
                    self.client.insert(name, part)
            else:
                for lo in range(0, len(rows), _INSERT_BATCH):
                    write = self.client.upsert if replace else self.client.insert
                    write(name, rows[lo : lo + _INSERT_BATCH])
        except EngineError:
            raise
        except IndexUnavailable:
            raise
        except Exception as exc:
            raise EngineError(f"Milvus refused rows of {what}: {exc}", collection=collection) from exc
        finally:
            self._wrote()

    def delete_rows(self, collection: str, rowsets: Sequence[RowSet]) -> None:
        if not rowsets or not self.has_collection(collection):
            return
        try:
            # Milvus Lite 2.5 refuses a filter of 64 or more or-ed terms ("unsupported expr proto node").
            for lo in range(0, len(rowsets), _DELETE_BATCH):
                expr = " or ".join(_rowset_expr(r) for r in rowsets[lo : lo + _DELETE_BATCH])
                self.client.delete(self.engine_name(collection), filter=expr)
        except IndexUnavailable:
            raise
        except Exception as exc:
            raise EngineError(f"Milvus could not delete rows: {exc}", collection=collection) from exc
        finally:
            self._wrote()

    def live_rowsets(self, collection: str) -> set[RowSet]:
        """Every (doc_id, version) that has rows in the index; for verification and tests."""
        return set(self.indexed_chunks(collection).values())

    def indexed_chunks(self, collection: str) -> dict[str, RowSet]:
        """Every row of the collection: chunk id → the document version it belongs to."""
        if not self.has_collection(collection):
            return {}
        found: dict[str, RowSet] = {}
        self._loaded(self.engine_name(collection))
        iterator = self.client.query_iterator(
            self.engine_name(collection),
            batch_size=1000,
            filter="",
            output_fields=["chunk_id", "doc_id", "version"],
            **self._read_consistency(strong=True),
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
        except IndexUnavailable:
            raise
        except Exception as exc:
            raise EngineError(f"Milvus could not delete rows: {exc}", collection=collection) from exc
        finally:
            self._wrote()

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
        strong: bool = False,
        fusion: HybridFusion = DEFAULT_FUSION,
        constraint: str = "",
    ) -> list[SearchHit]:
        """Search; ``constraint`` (from `cairn.access.retrieval_filter`) is ANDed with the hidden-row exclusion."""
        if mode not in SEARCH_MODES:
            raise InvalidRequest(f"unknown search mode {mode!r}: choose one of {', '.join(SEARCH_MODES)}")
        if not self.features.bm25:
            mode = "dense"  # the one warning was logged when the engine was opened
        if mode != "keyword" and query_vector is None:
            raise InvalidRequest(f"a {mode} search needs the query's vector")
        name = self.engine_name(collection)
        expr = " and ".join(f"({part})" for part in (_exclude_expr(hidden), constraint) if part)
        consistency = self._read_consistency(strong=strong)
        request = _SearchRequest(mode, name, k, query_text, query_vector, expr, fusion, consistency)
        try:
            result = self._search_once(request)
        except IndexUnavailable:
            raise
        except Exception as exc:
            if "NaN or Inf" in str(exc):
                # Milvus Lite cannot score BM25 over an index without rows: nothing matches.
                return []
            raise EngineError(f"search in collection {collection!r} failed: {exc}", collection=collection) from exc
        return [_to_hit(hit) for hit in result[0]]

    def _search_once(self, r: _SearchRequest) -> Any:
        if r.mode == "dense":
            assert r.vector is not None  # checked by search
            return self.client.search(
                r.name,
                data=[r.vector.tolist()],
                anns_field="dense",
                limit=r.k,
                filter=r.expr,
                search_params={"metric_type": "IP"},
                output_fields=_OUTPUT_FIELDS,
                **r.consistency,
            )
        elif r.mode == "keyword":
            return self.client.search(
                r.name,
                data=[r.text],
                anns_field="sparse",
                limit=r.k,
                filter=r.expr,
                search_params={"metric_type": "BM25"},
                output_fields=_OUTPUT_FIELDS,
                **r.consistency,
            )
        assert r.vector is not None
        # Each leg fetches more than k so fusion can promote what one leg ranks lower.
        depth = max(r.k * 3, 30)
        if r.fusion.method == "weighted":
            # The two legs run at once, then the two searches that score their candidates: two round trips.
            dense_search = self._beside(self._search_once, r._replace(mode="dense", k=depth))
            keyword = self._search_once(r._replace(mode="keyword", k=depth))[0]
            dense = dense_search()[0]
            cosine_search = self._beside(self._cosines, r, dense, keyword)
            headings = self._heading_scores(r, [*dense, *keyword])
            cosines = cosine_search()
            return [
                weighted_fusion(dense, keyword, r.fusion.dense_weight, r.k, cosines, headings, r.fusion.heading_weight)
            ]
        from pymilvus import AnnSearchRequest, RRFRanker

        requests = [
            AnnSearchRequest([r.vector.tolist()], "dense", {"metric_type": "IP"}, depth, expr=r.expr),
            AnnSearchRequest([r.text], "sparse", {"metric_type": "BM25"}, depth, expr=r.expr),
        ]
        return self.client.hybrid_search(
            r.name,
            reqs=requests,
            ranker=RRFRanker(r.fusion.rrf_k),
            limit=r.k,
            output_fields=_OUTPUT_FIELDS,
            **r.consistency,
        )

    def _beside(self, call: Callable[..., _T], *args: Any) -> Callable[[], _T]:
        """Start *call* on the search threads and return what waits for its result (its error is raised there).

        With ``concurrent_legs`` off it runs when its result is asked for, after the caller's own search."""
        if not self.concurrent_legs:
            return lambda: call(*args)
        with self._threads_lock:
            if self._search_threads is None:
                self._search_threads = ThreadPoolExecutor(max_workers=32, thread_name_prefix="cairn-search")
            return self._search_threads.submit(call, *args).result

    def _heading_scores(self, r: _SearchRequest, candidates: Sequence[Any]) -> dict[str, float]:
        """The BM25 score of each candidate's headings (title, section path) against the query, where they match.

        One keyword search of the heading index restricted to the candidates, so every candidate is scored
        and none is added. Nothing where the fusion gives headings no weight, or the collection has no
        heading index (it was made before there was one; `cairn reindex` adds it)."""
        if r.fusion.heading_weight <= 0.0 or not candidates or not self._has_field(r.name, "headings"):
            return {}
        ids = list(dict.fromkeys(hit["id"] for hit in candidates))
        return self._scores_of(r, ids, r.text, "headings_sparse", "BM25")

    def _cosines(self, r: _SearchRequest, dense: Sequence[Any], keyword: Sequence[Any]) -> dict[str, float]:
        """The cosine to the query of each keyword hit the dense leg did not return, so its dense score is exact.

        One dense search restricted to those chunks: Milvus scores them, and no vector is sent back."""
        seen = {hit["id"] for hit in dense}
        missing = [hit["id"] for hit in keyword if hit["id"] not in seen]
        if not missing:
            return {}
        assert r.vector is not None
        return self._scores_of(r, missing, r.vector.tolist(), "dense", "IP")

    def _scores_of(
        self, r: _SearchRequest, ids: Sequence[str], query: object, field: str, metric: str
    ) -> dict[str, float]:
        """The score of each of the chunks *ids* for *query* on *field*: a search restricted to them (none added)."""
        result = self.client.search(
            r.name,
            data=[query],
            anns_field=field,
            limit=len(ids),
            filter="chunk_id in [" + ", ".join(json.dumps(c) for c in ids) + "]",
            search_params={"metric_type": metric},
            output_fields=[],
            **r.consistency,
        )
        return {hit["id"]: float(hit["distance"]) for hit in result[0]}


def keyword_text(row: dict[str, Any]) -> str:
    """What the keyword index of a collection with keyword context reads for *row*: heading path, then text.

    Cut to the field's size in bytes (a long heading path over a full chunk), never inside a character."""
    text = with_heading_path(row["location"].get("heading_path", ()), row["text"])
    return text.encode("utf-8")[:_MAX_TEXT_BYTES].decode("utf-8", errors="ignore")


def heading_text(row: dict[str, Any]) -> str:
    """What the heading index reads for *row*: its heading path (``Guide > Install``), cut to the field's size."""
    text = with_heading_path(row["location"].get("heading_path", ()), "").strip()
    return text.encode("utf-8")[:_MAX_HEADINGS_BYTES].decode("utf-8", errors="ignore")


class _SearchRequest(NamedTuple):
    mode: SearchMode
    name: str
    k: int
    text: str
    vector: npt.NDArray[np.float32] | None
    expr: str
    fusion: HybridFusion
    consistency: dict[str, str]


class RowBatch:
    """Rows of several documents written together once there are enough for one engine batch (or bulk import).

    Rebuild and reindex use it; call ``flush()`` after the last ``add``.
    """

    def __init__(self, index: MilvusIndex, collection: str) -> None:
        self.index = index
        self.collection = collection
        self.rows: list[dict[str, Any]] = []
        # Gathering rows for bulk import holds them in memory (~14 KB each at 384 dimensions): never more than
        # _MAX_GATHERED_ROWS, so a bulk threshold above it means rebuild and reindex insert.
        self.size = min(index.bulk.min_rows, _MAX_GATHERED_ROWS) if index.bulk is not None else _INSERT_BATCH

    def add(self, document: IndexedDocument, chunks: Sequence[Chunk], vectors: npt.NDArray[np.float32]) -> None:
        self.rows.extend(self.index.rows_of(document, chunks, vectors))
        if len(self.rows) >= self.size:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.index.write_rows(self.collection, self.rows, what=f"{len(self.rows)} rows")
            self.rows = []


def open_index(settings: Settings) -> MilvusIndex:
    """The index the settings describe: Milvus Lite under CAIRN_HOME or the configured server, with bulk import.

    CAIRN_HOME is made private (0700) first: it holds the Lite database with every tenant's passages.
    """
    private_dir(settings.home)
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
    index = MilvusIndex(
        settings.engine_uri,
        token=token,
        dense_index=settings.dense_index,
        bm25_k1=settings.bm25_k1,
        bm25_b=settings.bm25_b,
        bm25_analyzer=settings.bm25_analyzer,
        keyword_context=settings.keyword_heading_context,
        tls_ca=settings.milvus_tls_ca,
        insecure=settings.milvus_insecure,
        consistency=settings.milvus_consistency,
        read_timeout_s=settings.milvus_timeout_s,
        write_timeout_s=settings.milvus_write_timeout_s,
    )
    if settings.milvus_bucket and index.engine == "milvus-server":
        from cairn.vault.factory import s3_client

        index.bulk = BulkLoader(s3_client(settings), settings.milvus_bucket, min_rows=settings.bulk_insert_min_rows)
    return index


def tls_options(uri: str, ca: Path | None) -> dict[str, str]:
    """pymilvus connection options for one-way TLS: check the server's certificate against ``ca``.

    On loopback the certificate is checked for the name ``localhost`` (the local stack's names it).
    """
    if ca is None:
        return {}
    options = {"server_pem_path": str(ca)}
    if "://127.0.0.1" in uri or "://localhost" in uri:
        options["server_name"] = "localhost"
    return options


def _to_hit(hit: Any) -> SearchHit:
    """A hit as clients may see it: its text and metadata cleaned again (`cairn.parse.text.clean_text`),
    so rows indexed before a cleaning rule existed never hand out what the rule removes."""
    entity = hit["entity"]
    location = _json_field(entity.get("location"))
    metadata = {
        key: clean_text(value) if isinstance(value, str) else value
        for key, value in _json_field(entity.get("metadata")).items()
    }
    return SearchHit(
        doc_id=entity["doc_id"],
        source=entity["source"],
        chunk_id=hit["id"] if "id" in hit else hit["chunk_id"],
        score=float(hit["distance"]),
        text=clean_text(entity["text"]),
        location=Location.model_validate(location),
        version=int(entity["version"]),
        metadata=metadata,
    )


def _json_field(value: Any) -> dict[str, Any]:
    """A JSON field as a dict: Milvus returns JSON fields decoded or as text, depending on version."""
    if not value:
        return {}
    decoded = json.loads(value) if isinstance(value, str | bytes) else value
    return dict(decoded)
