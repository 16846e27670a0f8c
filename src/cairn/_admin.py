"""Administration of `Cairn`: API keys, collections, retention, rebuild, reindex and verify."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cairn._base import CairnBase
from cairn.access import authorize
from cairn.auth import ApiKey, Principal
from cairn.errors import ConfigError, Forbidden, InvalidRequest, NotFound
from cairn.maintenance import ReindexReport, VerifyReport, rebuild, reindex, verify
from cairn.vault.manifest import Retention


class Administration(CairnBase):
    def create_key(self, *, principal: Principal | None = None, **fields: Any) -> tuple[str, ApiKey]:
        """Create an API key (admins only, within their tenant); the token is returned once."""
        authorize(principal, "manage")
        if principal is not None and fields.get("tenant") != principal.tenant:
            raise Forbidden(f"this key belongs to tenant {principal.tenant!r} and cannot make keys for another")
        token, record = self.keys.create(**fields)
        self._record(principal, "key.create", target=record.key_id, detail=f"{record.role} of {record.tenant}")
        return token, record

    def list_keys(self, *, principal: Principal | None = None) -> list[ApiKey]:
        """The keys an admin may see: those of its own tenant (all of them for the local caller)."""
        authorize(principal, "manage")
        return [k for k in self.keys.list() if principal is None or k.tenant == principal.tenant]

    def revoke_key(self, key_id: str, *, principal: Principal | None = None) -> ApiKey:
        """Revoke a key; it fails from the next request on."""
        authorize(principal, "manage")
        record = self.keys.get(key_id)
        if principal is not None and record.tenant != principal.tenant:
            raise NotFound(f"no key {key_id!r}")
        record = self.keys.revoke(key_id)
        self._record(principal, "key.revoke", target=key_id)
        return record

    def drop_collection(self, collection: str, *, principal: Principal | None = None) -> None:
        """Delete the collection's index and manifest. Original document bytes stay in the vault.

        A key may drop only a collection whose documents (live or removed) all belong to its tenant;
        the check and the drop happen under the collection's write lock, so no upload slips between.
        """
        name = self._collection(collection)
        authorize(principal, "manage", name)
        live = self._live_manifest(name)
        with live.write_lock:
            manifest = live.draft()
            if principal is not None and any(d.tenant != principal.tenant for d in manifest.documents.values()):
                raise Forbidden(
                    f"collection {name!r} also holds documents of other tenants, so a key of tenant "
                    f"{principal.tenant!r} cannot drop it; remove your documents instead, or drop it on the host "
                    f"(cairn collections drop {name})"
                )
            self._record(principal, "collection.drop", collection=name)
            self.index.drop_collection(manifest.index_name)
            self.vault.delete_collection(name)
            with self._lock:
                self._live.pop(name, None)

    def set_retention(self, mode: str | None, days: int = 0, *, collection: str | None = None) -> None:
        """Keep the collection's versions under object-lock retention for *days* (``None`` mode: stop).

        Existing versions are locked for *days* from now too. Needs an S3 bucket with Object Lock.
        """
        name = self._collection(collection)
        live = self._live_manifest(name)
        retention = None
        if mode is not None:
            try:
                retention = Retention.model_validate({"mode": mode.upper(), "days": days})
            except ValueError as exc:
                raise InvalidRequest(
                    f"invalid retention: mode GOVERNANCE or COMPLIANCE, 1 to 36500 days ({exc})"
                ) from exc
            if not self.vault.store.supports_retention():
                raise ConfigError(
                    f"the vault at {self.vault.store.describe()} has no object lock; retention needs an S3 bucket "
                    "created with Object Lock enabled"
                )
        with live.write_lock:
            manifest = live.draft()
            manifest.retention = retention
            if retention is not None:
                for doc in manifest.documents.values():
                    for version in doc.versions:
                        self.vault.retain_version(version, retention)
            self.vault.save_manifest(manifest)
            live.publish(manifest)

    # -- maintenance -----------------------------------------------------------------------------
    def rebuild(self, *, collection: str | None = None) -> int:
        """Re-create the collection's index from the vault, without embedding; return rows inserted."""
        name = self._collection(collection)
        return rebuild(self.vault, self.index, self._live_manifest(name))

    def reindex(
        self,
        model: str,
        *,
        collection: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> ReindexReport:
        """Re-embed the collection with *model* into a new index and switch searches to it atomically.

        Searches (from other threads, or the HTTP service) keep being answered from the old index
        until the switch; call this from a background thread to keep serving meanwhile.
        """
        name = self._collection(collection)
        embedder = self.embedder_for(model)
        return reindex(
            self.vault,
            self.index,
            self._live_manifest(name),
            embedder=embedder,
            cache=self._cache(embedder.model_name),
            progress=progress,
        )

    def verify(self, *, collection: str | None = None, repair: bool = False) -> VerifyReport:
        """Reconcile the vault and the index: missing and orphan rows, corrupt objects; repair the index."""
        name = self._collection(collection)
        return verify(self.vault, self.index, self._live_manifest(name), repair=repair)
