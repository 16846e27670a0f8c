"""`Cairn`'s source operations: add, list, show, sync and remove sources; the CLI and HTTP call these.

Who may do what: the host (no key) everything; over the API, admins add and remove sources of
their own tenant, and only S3 sources (a key must never make the server read its own files or
repositories); editors list, show and sync the sources of their tenant in collections they may
use. Every change is audited. A source's settings never hold a secret: S3 credentials are named
environment variables of the processes that sync it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn._base import _document_access
from cairn.access import authorize
from cairn.auth import Principal
from cairn.catalog import SourceRecord
from cairn.errors import Forbidden, InvalidRequest, NotFound
from cairn.settings import validate_collection_name
from cairn.sources.kinds import source_kind
from cairn.sources.sync import SyncProgress, SyncReport, run_sync

if TYPE_CHECKING:
    from cairn.jobs.queue import Job
    from cairn.ray_engine import RayEngine

__all__ = ["SETTING_NAMES", "SourceOperations", "parse_every"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# What a source's settings may hold; anything else is refused (a secret pasted by mistake included).
_S3_SETTINGS = {
    "endpoint",
    "region",
    "path_style",
    "verify_tls",
    "ca_bundle",
    "access_key_env",
    "secret_key_env",
    "tags",
    "acl_tag",
}
SETTING_NAMES = frozenset({*_S3_SETTINGS, "ref", "acl_prefixes"})
_KIND_SETTINGS = {"s3": _S3_SETTINGS | {"acl_prefixes"}, "git": {"ref", "acl_prefixes"}, "directory": {"acl_prefixes"}}
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
_EVERY = re.compile(r"(\d+)\s*([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(text: str) -> float:
    """``15m``, ``1h``, ``90s`` or ``1d`` in seconds; at least a minute."""
    match = _EVERY.fullmatch(text.strip())
    if match is None:
        raise InvalidRequest(f"invalid schedule {text!r}: use a number and s, m, h or d (15m, 1h, 1d)")
    seconds = float(int(match.group(1)) * _UNIT_S[match.group(2)])
    if seconds < 60:
        raise InvalidRequest(f"a schedule of {text!r} is too often; sync at most once a minute")
    return seconds


class SourceOperations:
    """Mixed into `Cairn` (see core.py)."""

    catalog: Any
    _collection: Callable[[str | None], str]
    _record: Callable[..., None]

    def add_source(
        self,
        name: str,
        uri: str,
        *,
        collection: str | None = None,
        every: str | None = None,
        tenant: str | None = None,
        allow: Sequence[str] | None = None,
        settings: Mapping[str, object] | None = None,
        principal: Principal | None = None,
    ) -> SourceRecord:
        """Register a source whose objects a sync will keep in *collection* (nothing is read until then)."""
        if not _NAME.fullmatch(name):
            raise InvalidRequest(f"invalid source name {name!r}: use 1-64 letters, digits, '_', '.' or '-'")
        target = validate_collection_name(self._collection(collection))
        authorize(principal, "manage", target)
        kind = source_kind(uri)
        if principal is not None and kind != "s3":
            raise Forbidden("a key may add only S3 sources; folders on the server are added on the host")
        access = _document_access(tenant, allow if allow is not None else ["*"], principal)
        assert access is not None
        assert access.allowed is not None
        chosen = _checked_settings(name, kind, dict(settings or {}), access.tenant, principal)
        _check_lent_credentials(name, chosen, principal)
        if kind == "directory":
            folder = Path(uri).expanduser().absolute()
            if not folder.is_dir():
                raise InvalidRequest(f"{folder} is not a folder; give the folder whose files the source holds")
            uri = str(folder)
        record = SourceRecord(
            name=name,
            kind=kind,
            uri=uri,
            collection=target,
            tenant=access.tenant,
            allowed=list(access.allowed),
            every_s=parse_every(every) if every else None,
            settings=chosen,
            next_sync_at=time.time() if every else None,
        )
        self.catalog.add_source(record)
        self._record(principal, "source.add", collection=target, target=name, detail=f"{kind} {uri}")
        return record

    def change_source(
        self,
        name: str,
        *,
        every: str | None = None,
        allow: Sequence[str] | None = None,
        settings: Mapping[str, object] | None = None,
        principal: Principal | None = None,
    ) -> SourceRecord:
        """Change a source's schedule (``every="off"`` stops it), ACL or settings (given ones replace theirs).

        A changed ACL or ACL map applies on the next sync, which reads the objects again but embeds nothing.
        """
        source = self.source_info(name, principal=principal)
        authorize(principal, "manage", source.collection)
        changes: dict[str, object] = {}
        if every is not None:
            changes["every_s"] = None if every == "off" else parse_every(every)
            changes["next_sync_at"] = None if every == "off" else time.time()
        if allow is not None:
            access = _document_access(source.tenant, allow, principal)
            assert access is not None
            changes["allowed"] = list(access.allowed or ())
        if settings is not None:
            merged = {**source.settings, **settings}
            changes["settings"] = _checked_settings(
                name, source.kind, {k: v for k, v in merged.items() if v is not None}, source.tenant, principal
            )
            _check_lent_credentials(name, changes["settings"], principal)  # type: ignore[arg-type]
        updated = self.catalog.update_source(source.model_copy(update=changes))
        self._record(principal, "source.change", collection=source.collection, target=name, detail=", ".join(changes))
        return updated  # type: ignore[no-any-return]

    def sources(self, *, principal: Principal | None = None) -> list[SourceRecord]:
        """The sources this caller may see: of its tenant, in collections it may use (all for the host)."""
        authorize(principal, "ingest")
        return [s for s in self.catalog.source_list() if _visible(s, principal)]

    def source_info(self, name: str, *, principal: Principal | None = None) -> SourceRecord:
        """One source, with its last sync's report."""
        authorize(principal, "ingest")
        found = self.catalog.source(name)
        if found is None or not _visible(found, principal):
            raise NotFound(f"no source {name!r}; list them with: cairn sources list")
        return found  # type: ignore[no-any-return]

    def sync_source(
        self,
        name: str,
        *,
        confirm_deletions: bool = False,
        progress: Callable[[SyncProgress], None] | None = None,
        principal: Principal | None = None,
        engine: RayEngine | None = None,
    ) -> SyncReport:
        """Sync a source now, in this process (see `cairn.sources.sync`); `SourceError` when its listing fails.

        With *engine* (`cairn.ray_engine.RayEngine`), what changed is parsed and embedded on a Ray cluster.
        """
        source = self.source_info(name, principal=principal)
        authorize(principal, "ingest", source.collection)
        report = run_sync(
            self,  # type: ignore[arg-type]
            name,
            confirm_deletions=confirm_deletions,
            progress=progress,
            engine=engine,
        )
        self._record(
            principal,
            "source.sync",
            collection=source.collection,
            target=name,
            detail=f"{report.listed} listed, {report.unchanged} unchanged, {report.ingested} ingested, "
            f"{report.removed} removed, {report.held_back} held back, {len(report.failed)} failed",
        )
        return report

    def submit_source_sync(
        self, name: str, *, confirm_deletions: bool = False, principal: Principal | None = None
    ) -> Job:
        """Record a sync of the source as a durable job for the workers; return the job."""
        from cairn.jobs.queue import queue_for
        from cairn.sources.jobs import SOURCE_SYNC

        source = self.source_info(name, principal=principal)
        authorize(principal, "ingest", source.collection)
        owner = principal.key_id if principal is not None else "host"
        job = queue_for(self.catalog).enqueue(
            SOURCE_SYNC,
            source.collection,
            source.tenant,
            owner,
            {"source": name, "confirm_deletions": confirm_deletions},
        )
        self._record(principal, "source.sync.submit", collection=source.collection, target=name, detail=job.job_id)
        return job

    def remove_source(self, name: str, *, take_down: bool = False, principal: Principal | None = None) -> int:
        """Forget a source; with *take_down*, take its documents out of search too. Return how many were."""
        source = self.source_info(name, principal=principal)
        authorize(principal, "manage", source.collection)
        removed = 0
        if take_down:
            owned = [o.doc_id for o in self.catalog.source_objects(name).values()]
            removed = len(self._ingestor(source.collection).remove(owned)) if owned else 0  # type: ignore[attr-defined]
        self.catalog.remove_source(name)
        self._record(
            principal, "source.remove", collection=source.collection, target=name, detail=f"{removed} taken down"
        )
        return removed


# The only environment variables a key may name as a source's credentials: ones the operator set for sources.
LENT_CREDENTIALS_PREFIX = "CAIRN_SOURCE_"


def _check_lent_credentials(name: str, settings: Mapping[str, object], principal: Principal | None) -> None:
    """A key's S3 source names both credentials, as variables the operator set for sources (``CAIRN_SOURCE_*``).

    Otherwise a tenant's admin could borrow the server's own credentials (the AWS default chain, the vault's
    ``AWS_*`` keys) and sync the vault's bucket, every tenant's documents, into its own tenant.
    """
    if principal is None:
        return
    for key in ("access_key_env", "secret_key_env"):
        variable = settings.get(key)
        if not (isinstance(variable, str) and variable.startswith(LENT_CREDENTIALS_PREFIX)):
            raise Forbidden(
                f"source {name!r}: a key must name both credentials (access_key_env, secret_key_env) as environment "
                f"variables the operator set for sources ({LENT_CREDENTIALS_PREFIX}*); the server's own credentials "
                "are never lent to a source"
            )


def _visible(source: SourceRecord, principal: Principal | None) -> bool:
    return principal is None or (source.tenant == principal.tenant and principal.may_use(source.collection))


def _checked_settings(
    name: str, kind: str, settings: dict[str, object], tenant: str, principal: Principal | None
) -> dict[str, object]:
    """The settings, checked, with the groups of an ACL map in the form ACLs are stored in."""
    _check_settings(name, kind, settings)
    if isinstance(mapped := settings.get("acl_prefixes"), dict):  # checked: prefix → non-empty list of names
        settings["acl_prefixes"] = {
            str(prefix): list(_document_access(tenant, groups, principal).allowed or ())  # type: ignore[union-attr]
            for prefix, groups in mapped.items()
        }
    return settings


def _check_settings(name: str, kind: str, settings: dict[str, object]) -> None:
    unknown = sorted(set(settings) - SETTING_NAMES)
    if unknown:
        raise InvalidRequest(
            f"source {name!r}: unknown settings {', '.join(unknown)}; known: {', '.join(sorted(SETTING_NAMES))} "
            "(credentials are named environment variables: access_key_env, secret_key_env)"
        )
    for key in ("access_key_env", "secret_key_env"):
        value = settings.get(key)
        if value is not None and not (isinstance(value, str) and _ENV_NAME.fullmatch(value)):
            raise InvalidRequest(
                f"source {name!r}: {key} names the environment variable that holds the credential "
                "(like SOURCE_SECRET_KEY), never the credential itself"
            )
    tag = settings.get("acl_tag")
    if tag is not None and not (isinstance(tag, str) and 0 < len(tag) <= 128):
        raise InvalidRequest(f"source {name!r}: acl_tag names the S3 tag whose value lists an object's groups")
    prefixes = settings.get("acl_prefixes")
    if prefixes is not None and (
        not isinstance(prefixes, dict)
        or not all(
            isinstance(groups, list) and groups and all(isinstance(g, str) for g in groups)
            for groups in prefixes.values()
        )
    ):
        raise InvalidRequest(f"source {name!r}: acl_prefixes maps key prefixes to lists of groups")
    if misplaced := sorted(set(settings) - _KIND_SETTINGS[kind]):
        raise InvalidRequest(
            f"source {name!r}: a {kind} source does not take {', '.join(misplaced)} "
            f"(it takes {', '.join(sorted(_KIND_SETTINGS[kind]))})"
        )
