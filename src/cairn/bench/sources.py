"""`cairn bench sources`: what a sync of an S3 source costs when nothing changed, and when 1% did.

A SeaweedFS server on 127.0.0.1 holds the source's bucket (separate from the vault, which is a
local folder). The objects are small Markdown notes. The starting state, every object synced once,
is written straight into the catalog in bulk (one committed version and one `source_objects` row
per object, as a sync leaves them) instead of embedding thousands of notes first: the no-change sync
that follows runs the real code path, listing included, against that state. Then 1% of the
objects are rewritten and a second sync fetches, embeds, stores and indexes them for real.

Reported per sync: seconds, S3 requests (listing pages and fetches), and the counts of the report.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from cairn.bench.ingest import machine
from cairn.catalog import SourceObject, SqlCatalog, VersionRecord
from cairn.catalog import schema as t
from cairn.catalog.engine import write_transaction
from cairn.core import Cairn
from cairn.settings import Settings
from cairn.sources.kinds import S3Reader
from cairn.sources.sync import listing_signature, object_access, run_sync
from cairn.stack.seaweed import SeaweedS3

__all__ = ["bench_sources"]

_COLLECTION = "bench"


def _note(n: int, edition: int = 0) -> bytes:
    return f"# Note {n}\n\nEdition {edition}: cabinet {n} holds ledger {n * 7919 % 10007}.\n".encode()


def bench_sources(objects: int = 10_000, changed_share: float = 0.01) -> dict[str, Any]:
    """Sync an S3 source of *objects* notes with nothing changed, then with *changed_share* of them rewritten."""
    with (
        tempfile.TemporaryDirectory(prefix="cairn-bench-sources-") as scratch,
        SeaweedS3(root=Path(scratch) / "s3") as s3,
    ):
        client = s3.client()
        s3.create_bucket("source")
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda n: client.put_object(Bucket="source", Key=f"notes/{n:06d}.md", Body=_note(n)), range(objects)
                )
            )
        upload_s = time.perf_counter() - started
        # Seeded versions have no index rows: a long grace keeps the janitor from deleting rows that never were.
        with Cairn(Settings(home=Path(scratch) / "home", retire_grace_s=3600)) as cairn:
            record = cairn.add_source(
                "bench",
                "s3://source/notes/",
                collection=_COLLECTION,
                settings={"endpoint": s3.endpoint_url, "path_style": True},
            )

            def reader() -> S3Reader:
                return S3Reader(record, client=client)

            seed_s = _seed(cairn, reader(), objects)
            unchanged = _timed(cairn, reader())
            step = max(1, round(1 / changed_share))
            rewritten = list(range(0, objects, step))
            for n in rewritten:
                client.put_object(Bucket="source", Key=f"notes/{n:06d}.md", Body=_note(n, edition=1))
            cairn.embedder  # noqa: B018 - loaded before the clock starts, as in a running worker
            changed = _timed(cairn, reader())
        return {
            "benchmark": "sources",
            "machine": machine(),
            "objects": objects,
            "upload_seconds": round(upload_s, 1),
            "seed_seconds": round(seed_s, 1),
            "no_change_sync": unchanged,
            "changed_objects": len(rewritten),
            "changed_sync": changed,
        }


def _timed(cairn: Cairn, reader: S3Reader) -> dict[str, Any]:
    started = time.perf_counter()
    report = run_sync(cairn, "bench", reader=reader)
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "requests": report.requests,
        "listed": report.listed,
        "unchanged": report.unchanged,
        "ingested": report.ingested,
        "removed": report.removed,
        "failed": len(report.failed),
    }


def _seed(cairn: Cairn, reader: S3Reader, objects: int) -> float:
    """Record every object as synced once: a live version (its bytes' hash) and its `source_objects` row."""
    started = time.perf_counter()
    catalog = cairn.catalog
    assert isinstance(catalog, SqlCatalog)
    state = cairn._state(_COLLECTION, create=True)
    source = catalog.source("bench")
    assert source is not None
    documents, versions, seen = [], [], []
    for entry in reader.listing():
        doc_id = hashlib.sha256(entry.key.encode()).hexdigest()[:32]
        digest = hashlib.sha256(_note(int(entry.key[6:12]))).hexdigest()
        documents.append(
            {
                "collection": state.name,
                "doc_id": doc_id,
                "source": reader.identity(entry.key),
                "tenant": "default",
                "allowed": ["*"],
                "live": 1,
                "updated_at": 0.0,
            }
        )
        version = VersionRecord(
            version=1,
            sha256=digest,
            size=entry.size,
            mime="text/markdown",
            created_at=time.time(),
            chunks=1,
            chunks_key=f"seeded/{doc_id}/1",
        )
        versions.append({"collection": state.name, "doc_id": doc_id, "state": "committed", **version.model_dump()})
        seen.append(
            SourceObject(
                key=entry.key,
                doc_id=doc_id,
                etag=entry.etag,
                size=entry.size,
                modified=entry.modified,
                sha256=digest,
                signature=listing_signature(entry, object_access(source, entry.key)),
            )
        )
    with write_transaction(catalog.engine) as connection:
        connection.execute(insert(t.documents), documents)
        connection.execute(insert(t.versions), versions)
    catalog.save_source_objects("bench", seen)
    return time.perf_counter() - started
