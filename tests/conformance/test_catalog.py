"""The catalog's contract, on every backend: SQLite (the embedded default) and PostgreSQL (a real server).

Each test names one rule of `cairn.catalog`: numbering and hiding reserved versions, publishing
(live, duplicate, superseded), take-downs, ACL changes, consistent snapshots, the janitor's inputs,
maintenance leases, paging, imports, and several real processes writing and migrating at once.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.catalog import CollectionState, DocumentRecord, Retention, RowSet, SqlCatalog, VersionDraft, VersionRecord
from cairn.catalog.engine import current_revision, head_revision
from cairn.errors import CatalogError

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("fresh_postgres_url"))
    return f"sqlite:///{tmp_path / 'catalog.db'}"


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[SqlCatalog]:
    opened = SqlCatalog(catalog_url)
    opened.ensure_collection("kb", embed_model="model-a", dim=3)
    yield opened
    opened.close()


def _draft(doc: str, sha: str = "a", *, source: str | None = None, **access: object) -> VersionDraft:
    return VersionDraft(
        doc_id=doc * 32 if len(doc) == 1 else doc,
        source=source or f"/docs/{doc}.txt",
        sha256=sha * 64 if len(sha) == 1 else sha,
        size=10,
        mime="text/plain",
        chunks=2,
        **access,  # type: ignore[arg-type]
    )


def _key(doc_id: str, number: int) -> str:
    return f"collections/kb/docs/{doc_id}/v{number:06d}.parquet"


def _store(catalog: SqlCatalog, *drafts: VersionDraft) -> list[tuple[DocumentRecord, VersionRecord]]:
    return catalog.reserve("kb", list(drafts), writer="test", chunks_key=_key)


def _commit(catalog: SqlCatalog, *drafts: VersionDraft) -> list[str]:
    reserved = _store(catalog, *drafts)
    published = catalog.publish(
        "kb", [(d, v.version) for d, (_, v) in zip(drafts, reserved, strict=True)], generation=0
    )
    return [p.outcome for p in published]


def test_a_collection_is_created_once_and_keeps_its_model(catalog: SqlCatalog) -> None:
    """ensure_collection returns the existing collection unchanged; names are listed sorted."""
    again = catalog.ensure_collection("kb", embed_model="model-b", dim=9)
    assert (again.embed_model, again.dim, again.generation) == ("model-a", 3, 0)
    catalog.ensure_collection("archive", embed_model="model-a", dim=3)
    assert catalog.collection_names() == ["archive", "kb"]
    assert catalog.collection("missing") is None


def test_reserved_versions_are_numbered_and_hidden_until_published(catalog: SqlCatalog) -> None:
    """A reserved version gets the next number and its rows are hidden; publishing makes it live and visible."""
    draft = _draft("a")
    [(_, version)] = _store(catalog, draft)
    assert version.version == 1
    assert version.chunks_key == _key(draft.doc_id, 1)
    assert catalog.hidden_rows("kb") == [RowSet(doc_id=draft.doc_id, version=1)]
    assert catalog.live_documents("kb") == []
    assert catalog.publish("kb", [(draft, 1)], generation=0)[0].outcome == "live"
    assert catalog.hidden_rows("kb") == []
    [live] = catalog.live_documents("kb")
    assert (live.live, live.live_version().sha256 if live.live_version() else None) == (1, draft.sha256)


def test_a_new_version_retires_the_old_rows(catalog: SqlCatalog) -> None:
    """Publishing version 2 makes it live and retires version 1's row set (hidden until the janitor deletes it)."""
    _commit(catalog, _draft("a", "1"))
    assert _commit(catalog, _draft("a", "2")) == ["live"]
    doc = catalog.document("kb", "a" * 32)
    assert doc is not None
    assert ([v.version for v in doc.versions], doc.live) == ([1, 2], 2)
    assert catalog.hidden_rows("kb") == [RowSet(doc_id="a" * 32, version=1)]
    [(rowset, generation)] = catalog.retired_rows("kb", before=time.time())
    assert (rowset.version, generation) == (1, 0)
    catalog.forget_retired("kb", [rowset])
    assert catalog.hidden_rows("kb") == []


def test_two_writers_of_the_same_bytes_end_at_one_version(catalog: SqlCatalog) -> None:
    """The second writer of identical bytes is told 'duplicate': its version is dropped, its rows retired."""
    first, second = _store(catalog, _draft("a")), _store(catalog, _draft("a"))
    assert [v.version for _, (_, v) in [(0, first[0]), (0, second[0])]] == [1, 2]
    assert catalog.publish("kb", [(_draft("a"), 1)], generation=0)[0].outcome == "live"
    assert catalog.publish("kb", [(_draft("a"), 2)], generation=0)[0].outcome == "duplicate"
    doc = catalog.document("kb", "a" * 32)
    assert doc is not None
    assert ([v.version for v in doc.versions], doc.live) == ([1], 1)
    assert catalog.hidden_rows("kb") == [RowSet(doc_id="a" * 32, version=2)]


def test_an_older_version_published_late_never_goes_live(catalog: SqlCatalog) -> None:
    """Writers publishing out of order: the newer version stays live, the older is kept but superseded."""
    _store(catalog, _draft("a", "1"))
    _store(catalog, _draft("a", "2"))
    assert catalog.publish("kb", [(_draft("a", "2"), 2)], generation=0)[0].outcome == "live"
    assert catalog.publish("kb", [(_draft("a", "1"), 1)], generation=0)[0].outcome == "superseded"
    doc = catalog.document("kb", "a" * 32)
    assert doc is not None
    assert ([v.version for v in doc.versions], doc.live) == ([1, 2], 2)
    assert RowSet(doc_id="a" * 32, version=1) in catalog.hidden_rows("kb")


def test_take_down_hides_a_document_and_keeps_its_versions(catalog: SqlCatalog) -> None:
    """A taken-down document is not live, its rows are retired, and its versions stay listed."""
    _commit(catalog, _draft("a"), _draft("b"))
    taken = catalog.take_down("kb", ["a" * 32, "c" * 32], generation=0)
    assert [d.doc_id for d in taken] == ["a" * 32]
    assert [d.doc_id for d in catalog.live_documents("kb")] == ["b" * 32]
    assert catalog.live_counts("kb") == (1, 2)
    doc = catalog.document("kb", "a" * 32)
    assert doc is not None
    assert (doc.live, [v.version for v in doc.versions]) == (None, [1])
    assert catalog.hidden_rows("kb") == [RowSet(doc_id="a" * 32, version=1)]


def test_access_changes_apply_and_report_only_what_changed(catalog: SqlCatalog) -> None:
    """set_access changes tenant and ACL, keeps the ACL when given None, and returns only changed documents."""
    _commit(catalog, _draft("a", tenant="acme", allowed=["group:hr"]), _draft("b", tenant="acme", allowed=["*"]))
    changed = catalog.set_access("kb", ["a" * 32, "b" * 32], tenant="acme", allowed=["*"])
    assert [d.doc_id for d in changed] == ["a" * 32]
    moved = catalog.set_access("kb", ["a" * 32], tenant="globex", allowed=None)
    assert [(d.tenant, d.allowed) for d in moved] == [("globex", ["*"])]
    assert catalog.tenants("kb") == {"acme", "globex"}


def test_a_new_version_keeps_the_acl_unless_one_is_given(catalog: SqlCatalog) -> None:
    """A draft without `allowed` keeps the document's ACL; one with it replaces the ACL on publish."""
    _commit(catalog, _draft("a", "1", tenant="acme", allowed=["group:finance"]))
    _commit(catalog, _draft("a", "2", tenant="acme"))
    assert catalog.documents("kb", ["a" * 32])["a" * 32].allowed == ["group:finance"]
    _commit(catalog, _draft("a", "3", tenant="acme", allowed=["group:hr"]))
    assert catalog.documents("kb", ["a" * 32])["a" * 32].allowed == ["group:hr"]


def test_a_snapshot_reads_one_instant(catalog: SqlCatalog) -> None:
    """Changes committed while a snapshot is open are not seen through it; a new snapshot sees them."""
    _commit(catalog, _draft("a", "1"))
    with catalog.snapshot("kb") as snapshot:
        assert snapshot.hidden_rows() == []
        _commit(catalog, _draft("a", "2"))
        catalog.take_down("kb", ["a" * 32], generation=0)
        assert snapshot.documents(["a" * 32])["a" * 32].live == 1
        assert snapshot.hidden_rows() == []
    with catalog.snapshot("kb") as later:
        assert later.documents(["a" * 32])["a" * 32].live is None
        assert {r.version for r in later.hidden_rows()} == {1, 2}


def test_a_snapshot_of_a_missing_collection_is_not_found(catalog: SqlCatalog) -> None:
    """Searching a collection the catalog does not have fails with NotFound, naming it."""
    from cairn.errors import NotFound

    with pytest.raises(NotFound, match="nothing"), catalog.snapshot("nothing"):
        pass


def test_abandoned_pending_versions_are_retired_at_once(catalog: SqlCatalog) -> None:
    """abandon() forgets a pending version and retires its rows with time 0, so the next sweep deletes them."""
    [(_, version)] = _store(catalog, _draft("a"))
    [pending] = catalog.pending_versions("kb")
    assert (pending.rowset.version, pending.writer) == (version.version, "test")
    catalog.abandon("kb", [pending.rowset], generation=0)
    assert catalog.pending_versions("kb") == []
    assert catalog.retired_rows("kb", before=1.0) == [(pending.rowset, 0)]


def test_live_documents_page_in_id_order(catalog: SqlCatalog) -> None:
    """Paging with after/limit visits every live document once, in doc id order."""
    _commit(catalog, *[_draft(f"{i:032x}", f"{i:064x}") for i in range(25)])
    pages = list(catalog.iter_live_documents("kb", page=10))
    assert [d.doc_id for d in pages] == [f"{i:032x}" for i in range(25)]
    assert catalog.live_counts("kb") == (25, 50)
    assert [d.source for d in catalog.documents_by_source("kb", ["/docs/" + f"{3:032x}" + ".txt"]).values()] == [
        f"/docs/{3:032x}.txt"
    ]


def test_blob_references_count_versions_in_every_collection(catalog: SqlCatalog) -> None:
    """Two versions in two collections sharing one blob count 2; a forgotten version no longer counts."""
    catalog.ensure_collection("other", embed_model="model-a", dim=3)
    _commit(catalog, _draft("a", "e"))
    draft = _draft("b", "e")
    [(_, version)] = catalog.reserve("other", [draft], writer="t", chunks_key=_key)
    catalog.publish("other", [(draft, version.version)], generation=0)
    assert catalog.blob_references(["e" * 64]) == {"e" * 64: 2}
    catalog.forget_document("other", draft.doc_id)
    assert catalog.blob_references(["e" * 64]) == {"e" * 64: 1}


def test_version_files_name_every_kept_version_published_or_pending_and_nothing_forgotten(
    catalog: SqlCatalog,
) -> None:
    """version_files lists each version the catalog keeps, live, earlier or still pending, with its chunk file;
    a version given up (abandoned) or forgotten is no longer listed (verify then calls its files orphans)."""
    _commit(catalog, _draft("a", "e"))
    _commit(catalog, _draft("a", "f"))
    [(_, pending)] = _store(catalog, _draft("b"))
    [(_, given_up)] = _store(catalog, _draft("c"))
    catalog.abandon("kb", [RowSet(doc_id="c" * 32, version=given_up.version)], generation=0)
    rowsets = {RowSet(doc_id="a" * 32, version=1), RowSet(doc_id="a" * 32, version=2)}
    rowsets.add(RowSet(doc_id="b" * 32, version=pending.version))
    assert catalog.version_files("kb") == {rowset: _key(rowset.doc_id, rowset.version) for rowset in rowsets}
    catalog.forget_version("kb", "a" * 32, 1)
    assert RowSet(doc_id="a" * 32, version=1) not in catalog.version_files("kb")
    assert catalog.version_files("other") == {}


def test_dropping_a_collection_forgets_everything_in_it(catalog: SqlCatalog) -> None:
    """After drop_collection, the collection, its documents and hidden rows are gone; others stay."""
    catalog.ensure_collection("other", embed_model="model-a", dim=3)
    _commit(catalog, _draft("a"))
    catalog.drop_collection("kb")
    assert catalog.collection_names() == ["other"]
    assert catalog.document("kb", "a" * 32) is None
    assert catalog.hidden_rows("kb") == []


def test_retention_and_generation_switch_are_recorded(catalog: SqlCatalog) -> None:
    """Retention round-trips; a generation switch changes model, dimension and the versions' chunk files."""
    catalog.set_retention("kb", Retention(mode="GOVERNANCE", days=7))
    _commit(catalog, _draft("a"))
    rowset = RowSet(doc_id="a" * 32, version=1)
    catalog.switch_generation("kb", generation=1, embed_model="model-b", dim=5, chunk_keys={rowset: "new-key"})
    state = catalog.collection("kb")
    assert state is not None
    assert (state.generation, state.embed_model, state.dim, state.index_name) == (1, "model-b", 5, "kb_G1")
    assert state.retention == Retention(mode="GOVERNANCE", days=7)
    [doc] = catalog.live_documents("kb")
    assert doc.live_version() is not None
    assert doc.versions[0].chunks_key == "new-key"


def test_the_maintenance_lease_has_one_holder_until_it_expires(catalog: SqlCatalog) -> None:
    """A second holder is refused while the lease runs, and gets it once released or expired."""
    assert catalog.hold_maintenance("kb", "one", ttl_s=30)
    assert not catalog.hold_maintenance("kb", "two", ttl_s=30)
    assert catalog.maintenance_holder("kb") == "one"
    catalog.release_maintenance("kb", "one")
    assert catalog.maintenance_holder("kb") is None
    assert catalog.hold_maintenance("kb", "two", ttl_s=0.2)
    time.sleep(0.3)
    assert catalog.maintenance_holder("kb") is None
    assert catalog.hold_maintenance("kb", "three", ttl_s=30)


def test_loading_a_collection_happens_once(catalog: SqlCatalog) -> None:
    """load_collection records documents, versions and hidden rows; a second load of the same name is a no-op."""
    state = CollectionState(name="imported", embed_model="m", dim=3)
    version = VersionRecord(
        version=2, sha256="f" * 64, size=1, mime="text/plain", created_at=1.0, chunks=1, chunks_key="k"
    )
    doc = DocumentRecord(doc_id="d" * 32, source="/x", live=2, versions=[version])
    assert catalog.load_collection(state, [doc], hidden=[RowSet(doc_id="d" * 32, version=1)])
    assert not catalog.load_collection(state, [], hidden=[])
    loaded = catalog.document("imported", "d" * 32)
    assert loaded is not None
    assert (loaded.live, [v.version for v in loaded.versions]) == (2, [2])
    assert catalog.hidden_rows("imported") == [RowSet(doc_id="d" * 32, version=1)]


_WRITER = textwrap.dedent(
    """
    import sys
    from cairn.catalog import SqlCatalog, VersionDraft

    url, me = sys.argv[1], sys.argv[2]
    catalog = SqlCatalog(url)
    catalog.ensure_collection("kb", embed_model="model-a", dim=3)
    for round_ in range(10):
        drafts = [
            VersionDraft(doc_id=f"{d:032x}", source=f"/d/{d}", sha256=f"{(d * 7 + round_ % 2):064x}", size=1,
                         mime="text/plain", chunks=1)
            for d in range(round_ % 3, 12, 2)
        ]
        reserved = catalog.reserve("kb", drafts, writer=me, chunks_key=lambda d, v: f"{d}/{v}")
        catalog.publish("kb", [(d, v.version) for d, (_, v) in zip(drafts, reserved)], generation=0)
    print("done")
    """
)


def test_concurrent_writer_processes_leave_one_live_version_per_document(catalog_url: str, tmp_path: Path) -> None:
    """Four processes reserving and publishing the same documents at once: no error, no pending version left,
    and every document ends with exactly one live version, the newest committed one."""
    SqlCatalog(catalog_url).close()  # migrated once, so the writers race on data, not on the schema
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    writers = [
        subprocess.Popen([sys.executable, str(script), catalog_url, f"writer-{i}"], stdout=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    outputs = [w.communicate(timeout=240)[0] for w in writers]
    assert [w.returncode for w in writers] == [0, 0, 0, 0], outputs
    catalog = SqlCatalog(catalog_url)
    try:
        assert catalog.pending_versions("kb") == []
        live = catalog.live_documents("kb")
        assert len(live) == 12
        for doc in live:
            full = catalog.document("kb", doc.doc_id)
            assert full is not None
            assert full.live == max(v.version for v in full.versions)
    finally:
        catalog.close()


_MIGRATOR = "import sys; from cairn.catalog import SqlCatalog; SqlCatalog(sys.argv[1]).close(); print('ok')"


def test_processes_migrating_at_once_apply_the_schema_once(catalog_url: str) -> None:
    """Three processes opening a new, empty catalog at the same moment all succeed and leave it at the head."""
    openers = [
        subprocess.Popen([sys.executable, "-c", _MIGRATOR, catalog_url], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    assert [o.communicate(timeout=120)[0].strip() for o in openers] == ["ok"] * 3
    catalog = SqlCatalog(catalog_url, migrate_on_open=False)
    try:
        assert current_revision(catalog.engine) == head_revision()
    finally:
        catalog.close()


def test_an_unreachable_catalog_is_a_clear_error_not_a_hang() -> None:
    """A PostgreSQL URL nobody answers fails within seconds with a CatalogError naming the catalog, no password."""
    started = time.monotonic()
    with pytest.raises(CatalogError, match=r"127\.0\.0\.1:9") as caught:
        SqlCatalog("postgresql+psycopg://cairn:secret-pw@127.0.0.1:9/cairn")
    assert time.monotonic() - started < 15
    assert "secret-pw" not in str(caught.value)


# -- sources (cairn.catalog.sourcing) ----------------------------------------------------------------
def test_a_named_lease_has_one_holder_until_it_expires_or_is_released(catalog: SqlCatalog) -> None:
    """hold_lease: the first holder wins and may renew; another holder waits for expiry or release."""
    assert catalog.hold_lease("source-sync:kb", "a", ttl_s=30)
    assert not catalog.hold_lease("source-sync:kb", "b", ttl_s=30)
    assert catalog.hold_lease("source-sync:kb", "a", ttl_s=30)
    assert catalog.lease_holder("source-sync:kb") == "a"
    catalog.release_lease("source-sync:kb", "b")  # not b's to release
    assert catalog.lease_holder("source-sync:kb") == "a"
    catalog.release_lease("source-sync:kb", "a")
    assert catalog.hold_lease("source-sync:kb", "b", ttl_s=0.05)
    time.sleep(0.1)
    assert catalog.lease_holder("source-sync:kb") is None
    assert catalog.hold_lease("source-sync:kb", "a", ttl_s=30)


def test_sources_and_what_their_syncs_saw_are_kept_and_forgotten_together(catalog: SqlCatalog) -> None:
    """A source name is unique; its objects are replaced by key, owned per collection, and go with the source."""
    from cairn.catalog import SourceObject, SourceRecord
    from cairn.errors import InvalidRequest, NotFound

    catalog.add_source(SourceRecord(name="docs", kind="s3", uri="s3://b/p", collection="kb", every_s=60.0))
    with pytest.raises(InvalidRequest, match="exists"):
        catalog.add_source(SourceRecord(name="docs", kind="directory", uri="/x", collection="kb"))
    catalog.save_source_objects("docs", [SourceObject(key="a", doc_id="d1", etag="1", sha256="x" * 64)])
    catalog.save_source_objects(
        "docs",
        [
            SourceObject(key="a", doc_id="d1", etag="2", sha256="y" * 64),
            SourceObject(key="b", doc_id="d2", sha256="z" * 64),
        ],
    )
    seen = catalog.source_objects("docs")
    assert (sorted(seen), seen["a"].etag) == (["a", "b"], "2")
    assert catalog.sourced_documents("kb") == {"d1", "d2"}
    assert [s.name for s in catalog.due_sources(time.time())] == ["docs"]
    catalog.record_sync("docs", {"listed": 2}, next_sync_at=time.time() + 60)
    assert catalog.due_sources(time.time()) == []
    assert catalog.source("docs").last_sync == {"listed": 2}  # type: ignore[union-attr]
    changed = catalog.source("docs").model_copy(update={"allowed": ["group:hr"], "every_s": None})  # type: ignore[union-attr]
    catalog.update_source(changed)
    assert (catalog.source("docs").allowed, catalog.source("docs").every_s) == (["group:hr"], None)  # type: ignore[union-attr]
    catalog.forget_source_objects("docs", ["a"])
    assert list(catalog.source_objects("docs")) == ["b"]
    catalog.remove_source("docs")
    assert catalog.source_objects("docs") == {}
    assert catalog.source("docs") is None
    with pytest.raises(NotFound):
        catalog.remove_source("docs")


def test_rename_sources_keeps_the_document_and_never_takes_a_used_name(catalog: SqlCatalog) -> None:
    """A document renamed keeps its id; a rename onto a source another document has is skipped."""
    drafts = [
        VersionDraft(doc_id=f"{n:032x}", source=f"/abs/{n}.md", sha256=f"{n}" * 64, size=1, mime="text/plain", chunks=1)
        for n in range(2)
    ]
    catalog.reserve("kb", drafts, writer="w", chunks_key=lambda doc_id, number: f"{doc_id}/{number}")
    renamed = catalog.rename_sources("kb", {"/abs/0.md": "docs/0.md", "/abs/1.md": "docs/0.md"})
    assert renamed == [f"{0:032x}"]
    assert set(catalog.documents_by_source("kb", ["docs/0.md", "/abs/1.md"])) == {"docs/0.md", "/abs/1.md"}
