"""Administration of `Cairn`: API keys, collections, retention, rebuild, reindex and verify."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cairn._base import CairnBase
from cairn.access import authorize, authorize_key_grants, authorize_key_identities, within_grants
from cairn.auth import ApiKey, Principal
from cairn.catalog import Retention
from cairn.catalog.restore import restore_from_vault
from cairn.errors import ConfigError, Forbidden, InvalidRequest, NotFound
from cairn.maintenance import ORPHAN_GRACE_S, Maintenance, ReindexReport, VerifyReport, rebuild, reindex, verify

if TYPE_CHECKING:
    from cairn.ray_engine import RayEngine


class Administration(CairnBase):
    def create_key(self, *, principal: Principal | None = None, **fields: Any) -> tuple[str, ApiKey]:
        """Create an API key (admins only, within their own grants); the token is returned once."""
        authorize(principal, "manage")
        role, tenant, collections = fields.get("role", ""), fields.get("tenant", ""), fields.get("collections")
        authorize_key_grants(principal, role=role, tenant=tenant, collections=collections)
        authorize_key_identities(principal, groups=fields.get("groups") or (), user=fields.get("user"))
        token, record = self.keys.create(**fields)
        self._record(principal, "key.create", target=record.key_id, detail=f"{record.role} of {record.tenant}")
        return token, record

    def list_keys(self, *, principal: Principal | None = None) -> list[ApiKey]:
        """The keys an admin may see: those within its own grants (all of them for the local caller)."""
        authorize(principal, "manage")
        return [k for k in self.keys.list() if _within(principal, k)]

    def revoke_key(self, key_id: str, *, principal: Principal | None = None) -> ApiKey:
        """Revoke a key within the caller's own grants; it fails from the next request on. A key beyond
        them (another tenant's, a higher role's, one with wider collections) is not found, alike."""
        authorize(principal, "manage")
        record = self.keys.get(key_id)
        if not _within(principal, record):
            raise NotFound(f"no key {key_id!r}")
        record = self.keys.revoke(key_id)
        self._record(principal, "key.revoke", target=key_id)
        return record

    def drop_collection(self, collection: str, *, principal: Principal | None = None) -> None:
        """Delete the collection's index and manifest. Original document bytes stay in the vault.

        A key may drop only a collection whose documents (live or removed) all belong to its tenant;
        the catalog rows go first, so a writer that slips in between sees the collection gone.
        """
        name = self._collection(collection)
        authorize(principal, "manage", name)
        state = self._state(name)
        if principal is not None and self.catalog.tenants(name) - {principal.tenant}:
            raise Forbidden(
                f"collection {name!r} also holds documents of other tenants, so a key of tenant "
                f"{principal.tenant!r} cannot drop it; remove your documents instead, or drop it on the host "
                f"(cairn collections drop {name})"
            )
        self._record(principal, "collection.drop", collection=name)
        self.catalog.drop_collection(name)
        self.index.drop_collection(state.index_name)
        self.vault.delete_collection(name)

    def set_retention(self, mode: str | None, days: int = 0, *, collection: str | None = None) -> None:
        """Keep the collection's versions under object-lock retention for *days* (``None`` mode: stop).

        Existing versions are locked for *days* from now too. Needs an S3 bucket with Object Lock.
        """
        name = self._collection(collection)
        self._state(name)
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
        self.catalog.set_retention(name, retention)
        self.vault.write_collection_record(self._state(name))
        if retention is not None:
            for doc in self.catalog.iter_live_documents(name):
                for version in (self.catalog.document(name, doc.doc_id) or doc).versions:
                    self.vault.retain_version(version, retention)

    # -- maintenance -----------------------------------------------------------------------------
    def rebuild(self, *, collection: str | None = None) -> int:
        """Re-create the collection's index from the vault, without embedding; return rows inserted."""
        name = self._collection(collection)
        return rebuild(self._maintenance(name))

    def restore_catalog(self) -> list[str]:
        """Recreate, from the vault's version records and events, every collection the catalog lacks.

        For a lost or new catalog database; rebuild each restored collection's index afterwards.
        """
        restored = restore_from_vault(self.vault, self.catalog)
        self._record(None, "catalog.restore", detail=", ".join(restored) or "nothing to restore")
        return restored

    def reindex(
        self,
        model: str,
        *,
        collection: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        engine: RayEngine | None = None,
    ) -> ReindexReport:
        """Re-embed the collection with *model* into a new index and switch searches to it atomically.

        Searches (from other threads, or the HTTP service) keep being answered from the old index
        until the switch; call this from a background thread to keep serving meanwhile. With *engine*
        (`cairn.ray_engine.RayEngine`), the chunks are embedded on a Ray cluster.
        """
        name = self._collection(collection)
        embedder = engine.embedder_for(self.settings, self.embedder_for)(model) if engine else self.embedder_for(model)
        return reindex(
            self._maintenance(name), embedder=embedder, cache=self._cache(embedder.model_name), progress=progress
        )

    def verify(
        self, *, collection: str | None = None, repair: bool = False, orphan_grace_s: float = ORPHAN_GRACE_S
    ) -> VerifyReport:
        """Reconcile the vault and the index: missing and orphan rows, corrupt and orphan objects; with
        *repair*, repair the index and delete orphan objects older than *orphan_grace_s* (retention permitting)."""
        name = self._collection(collection)
        return verify(self._maintenance(name), repair=repair, orphan_grace_s=orphan_grace_s)

    def _maintenance(self, name: str) -> Maintenance:
        return Maintenance(
            vault=self.vault,
            index=self.index,
            catalog=self.catalog,
            ingestor=self._ingestor(name),
            collection=name,
        )


def _within(principal: Principal | None, key: ApiKey) -> bool:
    """Whether the key is within the principal's own grants (`cairn.access.within_grants`)."""
    return within_grants(principal, role=key.role, tenant=key.tenant, collections=key.collections)
