"""One sync of a source: list, compare with the last syncs, fetch and ingest what changed, take down what is gone.

The rules, kept here:

- **One sync of a source at a time**, in any process: a sync holds the catalog lease
  ``source-sync:NAME`` (renewed while it runs; a killed sync's lease runs out after `LEASE_S`).
- **Unchanged costs one listing entry**: an object whose listing entry (ETag, size, modified time,
  version id) and mapped access match what the last sync recorded, and whose document is still
  live, is neither fetched nor read.
- **Exactly once**: a changed object is fetched (streamed to a private folder) and ingested; the
  content hash decides whether it becomes a new version, so a sync that died after ingesting and
  before recording the object re-fetches it and finds it unchanged, never a second version.
- **Deletions need a complete listing**: the listing runs to its end before anything is ingested
  or removed; a listing that fails or is cut short raises `SourceError` and removes nothing.
- **The deletion guard**: a sync that would take down more than `GUARD_SHARE` of the documents
  the source holds, and more than `GUARD_MIN`, takes down none of them and reports them held
  back, until it is run with *confirm_deletions*.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from cairn.catalog import Catalog, SourceObject, SourceRecord
from cairn.catalog.writers import this_process, writer_is_gone
from cairn.errors import NotFound, SourceError
from cairn.ingest import DocumentAccess, Ingestor
from cairn.localfiles import private_dir
from cairn.models import FailedFile
from cairn.sources.kinds import ACL_TAG_FIELD, ListedObject, SourceReader, reader_for

if TYPE_CHECKING:
    from cairn.core import Cairn
    from cairn.ray_engine import RayEngine

__all__ = [
    "GUARD_MIN",
    "GUARD_SHARE",
    "LEASE_S",
    "SyncProgress",
    "SyncReport",
    "listing_signature",
    "object_access",
    "run_sync",
]

GUARD_SHARE = 0.10
GUARD_MIN = 10
LEASE_S = 30.0
_BATCH = 64  # objects fetched and ingested per ingest run
_GROUP = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")  # as `cairn.auth.validate_name`


class SyncReport(BaseModel):
    """What one sync did: listed, unchanged, ingested, removed, held back, failed (each with its reason)."""

    source: str
    collection: str
    complete: bool = False
    listed: int = 0
    unchanged: int = 0
    ingested: int = 0
    removed: int = 0
    held_back: int = 0
    failed: list[FailedFile] = Field(default_factory=list)
    requests: int = 0
    message: str | None = None
    started_at: float = Field(default_factory=time.time)
    seconds: float = 0.0


@dataclass(frozen=True)
class SyncProgress:
    """How far a sync is: *phase* (``listing``, ``ingesting``, ``removing``), *done* of *total* in it."""

    phase: str
    done: int
    total: int
    current: str | None = None


def object_access(source: SourceRecord, key: str, listed: ListedObject | None = None) -> DocumentAccess:
    """Who may see the document an object becomes: its ACL tag's groups, its ACL map's, or the source's ACL.

    With ``settings["acl_tag"]``, an object tagged with that key gets the groups its value names
    (``hr finance`` or ``hr,finance``; names that are not valid group names are left out). Else
    ``settings["acl_prefixes"]`` maps key prefixes to groups; the longest prefix that matches wins.
    """
    tagged = listed.metadata.get(ACL_TAG_FIELD) if listed is not None else None
    if tagged is not None:
        groups = sorted({f"group:{g}" for g in re.split(r"[\s,]+", tagged) if _GROUP.fullmatch(g)})
        if groups:
            return DocumentAccess(tenant=source.tenant, allowed=tuple(groups))
    mapping = source.settings.get("acl_prefixes")
    if isinstance(mapping, dict):
        matches = [prefix for prefix in mapping if key.startswith(str(prefix))]
        if matches:
            groups = mapping[max(matches, key=len)]
            if isinstance(groups, list) and groups:
                return DocumentAccess(tenant=source.tenant, allowed=tuple(str(g) for g in groups))
    return DocumentAccess(tenant=source.tenant, allowed=tuple(source.allowed))


def listing_signature(listed: ListedObject, access: DocumentAccess) -> str:
    """What a listing says of an object, and who may see it, digested: equal means unchanged."""
    said = [listed.etag, listed.size, listed.modified, listed.version_id, access.tenant, list(access.allowed or ())]
    return hashlib.sha256(json.dumps(said, sort_keys=True).encode()).hexdigest()


def run_sync(
    cairn: Cairn,
    name: str,
    *,
    confirm_deletions: bool = False,
    progress: Callable[[SyncProgress], None] | None = None,
    reader: SourceReader | None = None,
    engine: RayEngine | None = None,
) -> SyncReport:
    """Sync source *name* once under its lease; the report is also kept as the source's last sync.

    With *engine*, the changed objects are parsed and embedded on its Ray cluster (`cairn.ray_engine`).
    """
    catalog = cairn.catalog
    source = catalog.source(name)
    if source is None:
        raise NotFound(f"no source {name!r}; list them with: cairn sources list")
    lease, holder = f"source-sync:{name}", f"{this_process()}/{secrets.token_hex(4)}"
    if not _take_lease(catalog, lease, holder):
        raise SourceError(
            f"a sync of source {name!r} is already running ({catalog.lease_holder(lease)}); "
            "wait for it to end (cairn sources show NAME)",
            source=name,
        )
    keeper = _LeaseKeeper(cairn, lease, holder)
    report = SyncReport(source=name, collection=source.collection)
    started = time.perf_counter()
    try:
        _Sync(
            cairn,
            source,
            reader or reader_for(source, home=cairn.settings.home.absolute() / "sources"),
            report,
            progress,
            engine,
        ).run(confirm_deletions)
    except Exception as exc:  # recorded as the source's last sync, then raised to the caller
        report.message = report.message or str(exc) or type(exc).__name__
        raise
    finally:
        keeper.stop()
        report.seconds = round(time.perf_counter() - started, 3)
        next_at = time.time() + source.every_s if source.every_s else None
        catalog.record_sync(name, report.model_dump(mode="json"), next_sync_at=next_at)
        catalog.release_lease(lease, holder)
    return report


def _take_lease(catalog: Catalog, lease: str, holder: str) -> bool:
    """The source's lease, taken at once from a holder on this host whose process has ended (killed mid-sync)."""
    if catalog.hold_lease(lease, holder, ttl_s=LEASE_S):
        return True
    current = catalog.lease_holder(lease)
    if current is not None and writer_is_gone(current.split("/", 1)[0], age_s=0.0, stale_after_s=float("inf")):
        return catalog.hold_lease(lease, holder, ttl_s=LEASE_S, take_from=current)
    return False


class _Sync:
    def __init__(
        self,
        cairn: Cairn,
        source: SourceRecord,
        reader: SourceReader,
        report: SyncReport,
        progress: Callable[[SyncProgress], None] | None,
        engine: RayEngine | None = None,
    ) -> None:
        self.cairn = cairn
        self.engine = engine
        self.source = source
        self.reader = reader
        self.report = report
        self.progress = progress or (lambda _: None)

    def run(self, confirm_deletions: bool) -> None:
        catalog, source, report = self.cairn.catalog, self.source, self.report
        seen = catalog.source_objects(source.name)
        ingestor = self.cairn._ingestor(source.collection, create=True, engine=self.engine)
        live = catalog.documents(source.collection, [o.doc_id for o in seen.values()])
        changed: list[tuple[ListedObject, DocumentAccess, str]] = []
        listed: set[str] = set()
        for entry in self.reader.listing():  # raises SourceError when it cannot finish: nothing changes then
            listed.add(entry.key)
            report.listed += 1
            if report.listed % 1000 == 0:
                self.progress(SyncProgress("listing", report.listed, 0, entry.key))
            access = object_access(source, entry.key, entry)
            signature = listing_signature(entry, access)
            known = seen.get(entry.key)
            document = live.get(known.doc_id) if known is not None else None
            if known is not None and known.signature == signature and document is not None and document.live:
                report.unchanged += 1
            else:
                changed.append((entry, access, signature))
        report.complete = True
        self.progress(SyncProgress("listing", report.listed, report.listed))
        self._ingest(ingestor, changed)
        self._remove(ingestor, seen, [key for key in seen if key not in listed], confirm_deletions)
        report.requests = self.reader.requests

    def _ingest(self, ingestor: Ingestor, changed: list[tuple[ListedObject, DocumentAccess, str]]) -> None:
        workspace = Path(
            tempfile.mkdtemp(prefix="sync-", dir=private_dir(self.cairn.settings.home.absolute() / "jobs"))
        )
        done = 0
        try:
            for start in range(0, len(changed), _BATCH):
                batch = changed[start : start + _BATCH]
                for access in dict.fromkeys(item[1] for item in batch):
                    group = [item for item in batch if item[1] == access]
                    self._ingest_group(ingestor, group, access, workspace)
                    done += len(group)
                    self.progress(SyncProgress("ingesting", done, len(changed), self.reader.identity(group[-1][0].key)))
                for leftover in workspace.iterdir():
                    leftover.unlink()
        finally:
            shutil.rmtree(workspace, ignore_errors=True)

    def _ingest_group(
        self,
        ingestor: Ingestor,
        group: Sequence[tuple[ListedObject, DocumentAccess, str]],
        access: DocumentAccess,
        workspace: Path,
    ) -> None:
        report, collection = self.report, self.source.collection
        fetched: dict[str, tuple[ListedObject, str, str]] = {}  # identity → (entry, sha256, signature)
        paths: dict[str, str] = {}
        metadata: dict[str, dict[str, str]] = {}
        for entry, _, signature in group:
            identity = self.reader.identity(entry.key)
            try:
                got = self.reader.fetch(entry, workspace)
            except SourceError as exc:
                report.failed.append(FailedFile(path=identity, error=str(exc)))
                continue
            fetched[identity] = (entry, got.sha256, signature)
            paths[str(got.path)] = identity
            metadata[identity] = got.metadata
        if not paths:
            return
        outcome = ingestor.run([Path(p) for p in paths], access=access, sources=paths, metadata=metadata)
        report.ingested += outcome.ingested
        report.unchanged += outcome.unchanged
        report.failed.extend(outcome.failed)
        report.failed.extend(outcome.skipped)
        documents = self.cairn.catalog.documents_by_source(collection, list(fetched))
        recorded: list[SourceObject] = []
        for identity, (entry, digest, signature) in fetched.items():
            document = documents.get(identity)
            version = document.live_version() if document is not None else None
            if document is None or version is None or version.sha256 != digest:
                continue  # failed or skipped: the next sync tries it again
            recorded.append(
                SourceObject(
                    key=entry.key,
                    doc_id=document.doc_id,
                    etag=entry.etag,
                    size=entry.size,
                    modified=entry.modified,
                    version_id=entry.version_id,
                    sha256=digest,
                    signature=signature,
                )
            )
        self.cairn.catalog.save_source_objects(self.source.name, recorded)

    def _remove(self, ingestor: Ingestor, seen: dict[str, SourceObject], gone: list[str], confirmed: bool) -> None:
        report = self.report
        if not gone:
            return
        if len(gone) > GUARD_MIN and len(gone) > GUARD_SHARE * len(seen) and not confirmed:
            report.held_back = len(gone)
            report.message = (
                f"{len(gone)} of the {len(seen)} documents of source {self.source.name!r} are gone from it; "
                f"more than {GUARD_SHARE:.0%} and more than {GUARD_MIN}, so none was removed. If that is "
                f"right, sync again with --confirm-deletions (cairn sources sync {self.source.name} "
                "--confirm-deletions)"
            )
            return
        self.progress(SyncProgress("removing", 0, len(gone)))
        taken = ingestor.remove([seen[key].doc_id for key in gone])
        report.removed = len(taken)
        self.cairn.catalog.forget_source_objects(self.source.name, gone)
        self.progress(SyncProgress("removing", len(gone), len(gone)))


class _LeaseKeeper:
    """Renews a sync's lease every third of `LEASE_S` until stopped."""

    def __init__(self, cairn: Cairn, lease: str, holder: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(cairn, lease, holder), daemon=True)
        self._thread.start()

    def _run(self, cairn: Cairn, lease: str, holder: str) -> None:
        while not self._stop.wait(LEASE_S / 3):
            try:
                cairn.catalog.hold_lease(lease, holder, ttl_s=LEASE_S)
            except Exception:  # the catalog may be unreachable for a moment; the next round tries again
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
