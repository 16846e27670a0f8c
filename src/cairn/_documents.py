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
        """Change who may see documents; effective for the very next request, in every process."""
        name = self._collection(collection)
        authorize(principal, "acl", name)
        access = _document_access(tenant, allow, principal)
        assert access is not None
        ingestor = self._ingestor(name)
        ids = [self._resolve(name, ref, live_only=False, principal=principal).doc_id for ref in refs]
        ingestor.change_access(ids, access)
        self._record(
            principal,
            "acl.change",
            collection=name,
            documents=ids,
            detail=f"{access.tenant}: {','.join(access.allowed or ())}",
        )
        return [_document_info(doc) for doc_id in ids if (doc := self.catalog.document(name, doc_id)) is not None]

    def documents(self, *, collection: str | None = None, principal: Principal | None = None) -> list[DocumentInfo]:
        name = self._collection(collection)
        authorize(principal, "read", name)
        self._state(name)
        visible = [doc for doc in self.catalog.iter_live_documents(name, all_versions=True) if permits(principal, doc)]
        return [_document_info(doc) for doc in sorted(visible, key=lambda d: d.source)]

    def remove_documents(
        self, refs: Sequence[str], *, collection: str | None = None, principal: Principal | None = None
    ) -> list[DocumentInfo]:
        """Remove documents named by id or source path; raise NotFound naming any that is not live."""
        name = self._collection(collection)
        authorize(principal, "delete", name)
        ingestor = self._ingestor(name)
        docs = [self._resolve(name, ref, principal=principal) for ref in refs]
        ingestor.remove([doc.doc_id for doc in docs])
        self._record(principal, "document.remove", collection=name, documents=[doc.doc_id for doc in docs])
        return [_document_info(doc) for doc in docs]

    def document(self, ref: str, *, collection: str | None = None, principal: Principal | None = None) -> DocumentInfo:
        """A document by id or source path, with every version the vault keeps (live or removed)."""
        name = self._collection(collection)
        authorize(principal, "read", name)
        return _document_info(self._resolve(name, ref, live_only=False, principal=principal))

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
        docs = [self._resolve(name, ref, live_only=False, principal=principal) for ref in refs]
        self._ingestor(name).remove([doc.doc_id for doc in docs])
        purged: list[DocumentInfo] = []
        try:
            for doc in docs:
                info = _document_info(doc)
                references = self.catalog.blob_references([v.sha256 for v in doc.versions])
                for version in doc.versions:
                    try:
                        self.vault.purge_version(version, keep_blob=references.get(version.sha256, 0) > 1)
                    except StorageError as exc:
                        raise StorageError(
                            f"{doc.source} was removed from search, but its stored versions are kept: {exc}",
                            key=exc.key,
                        ) from exc
                    references[version.sha256] = references.get(version.sha256, 1) - 1
                    self.catalog.forget_version(name, doc.doc_id, version.version)
                self.catalog.forget_document(name, doc.doc_id)
                self.vault.record_event(name, "purge", doc.doc_id)
                purged.append(info)
        finally:
            # Record exactly what was deleted, also when a locked version stopped the purge.
            self._record(principal, "document.purge", collection=name, documents=[d.doc_id for d in purged])
        return purged
