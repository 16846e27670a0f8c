"""Document operations of `Cairn`: list, fetch any version's bytes, change ACLs, remove and purge."""

from __future__ import annotations

from collections.abc import Sequence

from cairn._base import CairnBase, _document_access, _document_info
from cairn.access import authorize, permits
from cairn.auth import Principal
from cairn.errors import NotFound, StorageError
from cairn.models import (
    DocumentInfo,
)


class DocumentOperations(CairnBase):
    def set_access(
        self,
        refs: Sequence[str],
        *,
        allow: Sequence[str],
        tenant: str | None = None,
        collection: str | None = None,
        principal: Principal | None = None,
    ) -> list[DocumentInfo]:
        """Change who may see documents; effective for the very next request."""
        name = self._collection(collection)
        authorize(principal, "acl", name)
        access = _document_access(tenant, allow, principal)
        assert access is not None
        ingestor = self._ingestor(name)
        with ingestor.live.snapshot() as manifest:
            ids = [self._resolve(manifest, ref, live_only=False, principal=principal) for ref in refs]
        ingestor.change_access(ids, access)
        self._record(
            principal,
            "acl.change",
            collection=name,
            documents=ids,
            detail=f"{access.tenant}: {','.join(access.allowed or ())}",
        )
        with ingestor.live.snapshot() as manifest:
            return [_document_info(manifest.documents[doc_id]) for doc_id in ids]

    def documents(self, *, collection: str | None = None, principal: Principal | None = None) -> list[DocumentInfo]:
        name = self._collection(collection)
        authorize(principal, "read", name)
        with self._live_manifest(name).snapshot() as manifest:
            visible = [doc for doc in manifest.live_documents() if permits(principal, doc)]
            return [_document_info(doc) for doc in sorted(visible, key=lambda d: d.source)]

    def remove_documents(
        self, refs: Sequence[str], *, collection: str | None = None, principal: Principal | None = None
    ) -> list[DocumentInfo]:
        """Remove documents named by id or source path; raise NotFound naming any that is not live."""
        name = self._collection(collection)
        authorize(principal, "delete", name)
        ingestor = self._ingestor(name)
        with ingestor.live.snapshot() as manifest:
            ids = [self._resolve(manifest, ref, principal=principal) for ref in refs]
        removed = [_document_info(doc) for doc in ingestor.remove(ids)]
        self._record(principal, "document.remove", collection=name, documents=ids)
        return removed

    def document(self, ref: str, *, collection: str | None = None, principal: Principal | None = None) -> DocumentInfo:
        """A document by id or source path, with every version the vault keeps (live or removed)."""
        name = self._collection(collection)
        authorize(principal, "read", name)
        with self._live_manifest(name).snapshot() as manifest:
            return _document_info(
                manifest.documents[self._resolve(manifest, ref, live_only=False, principal=principal)]
            )

    def document_bytes(
        self,
        ref: str,
        *,
        version: int | None = None,
        collection: str | None = None,
        principal: Principal | None = None,
    ) -> bytes:
        """The exact bytes of a document version (default: the live one), checked against their sha256."""
        info = self.document(ref, collection=collection, principal=principal)
        if principal is not None:
            self._record(principal, "document.get", collection=collection, documents=[info.doc_id])
        latest = max((v.version for v in info.versions), default=0)
        number = version if version is not None else (info.version or latest)
        chosen = next((v for v in info.versions if v.version == number), None)
        if chosen is None:
            known = ", ".join(str(v.version) for v in info.versions) or "none"
            raise NotFound(f"document {info.source!r} has no version {number}; versions kept: {known}")
        return self.vault.get_blob(chosen.sha256)

    def purge_documents(
        self, refs: Sequence[str], *, collection: str | None = None, principal: Principal | None = None
    ) -> list[DocumentInfo]:
        """Remove documents from search and delete every stored version of them from the vault.

        Original bytes another document version still uses (in any collection) are kept. Under
        object-lock retention the store refuses the deletion: the documents are then out of search
        but their versions stay, and the `StorageError` says until when.
        """
        name = self._collection(collection)
        authorize(principal, "delete", name)
        live = self._live_manifest(name)
        with live.snapshot() as manifest:
            ids = [self._resolve(manifest, ref, live_only=False, principal=principal) for ref in refs]
        self._ingestor(name).remove([doc_id for doc_id in ids])
        with live.write_lock:
            manifest = live.draft()
            references = self.vault.blob_references()
            purged: list[DocumentInfo] = []
            try:
                for doc_id in ids:
                    doc = manifest.documents[doc_id]
                    info = _document_info(doc)
                    for version in list(doc.versions):
                        try:
                            self.vault.purge_version(version, keep_blob=references.get(version.sha256, 0) > 1)
                        except StorageError as exc:
                            raise StorageError(
                                f"{doc.source} was removed from search, but its stored versions are kept: {exc}",
                                key=exc.key,
                            ) from exc
                        references[version.sha256] = references.get(version.sha256, 1) - 1
                        doc.versions.remove(version)
                    del manifest.documents[doc_id]
                    purged.append(info)
            finally:
                # Record exactly what was deleted, also when a locked version stopped the purge.
                self.vault.save_manifest(manifest)
                live.publish(manifest)
                self._record(principal, "document.purge", collection=name, documents=[d.doc_id for d in purged])
            return purged
