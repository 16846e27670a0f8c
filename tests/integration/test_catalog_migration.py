"""A CAIRN_HOME written before the catalog is migrated on first start; a lost catalog is recreated from the vault.

The fixture ``tests/fixtures/legacy_home/vault`` was written by cairn as of commit df8b7b6 (the last
manifest-based version) with ``make_legacy_home.py`` beside it: four files ingested, the salaries
document narrowed to ``group:finance``, leave.md changed (version 2), old.txt removed.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import pytest

from cairn import Cairn, Settings
from cairn.auth import Principal
from cairn.errors import StorageError

LEGACY_VAULT = Path(__file__).parent.parent / "fixtures" / "legacy_home" / "vault"


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _finance_reader() -> Principal:
    return Principal(key_id="0" * 16, role="reader", tenant="default", groups=("finance",))


def _check_migrated(cairn: Cairn) -> None:
    listed = {Path(d.source).name: d for d in cairn.documents()}
    assert set(listed) == {"expenses.txt", "leave.md", "salaries.md"}
    assert [v.version for v in listed["leave.md"].versions] == [1, 2]
    assert listed["leave.md"].version == 2
    assert listed["salaries.md"].allowed == ["group:finance"]
    removed = cairn.document("/tmp/legacy/docs/old.txt")
    assert (removed.version, [v.version for v in removed.versions]) == (0, [1])


def test_a_local_home_from_before_the_catalog_is_migrated_on_first_start(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """Documents, versions, live pointers and ACLs come over; the index rebuilds from them; the old files stay."""
    home = tmp_path / "home"
    shutil.copytree(LEGACY_VAULT, home / "vault")
    before = _digests(home / "vault")
    cairn = Cairn(Settings(home=home))
    cairn._embedder = embedder
    try:
        _check_migrated(cairn)
        assert cairn.rebuild() > 0
        hits = cairn.search("How many days of annual leave?", k=3).hits
        assert "30 days" in hits[0].text
        assert not any(Path(h.source).name == "old.txt" for h in cairn.search("canteen Friday", k=5).hits)
        outsider = Principal(key_id="1" * 16, role="reader", tenant="default", groups=("hr",))
        assert not any("salar" in h.source for h in cairn.search("analyst salary band", k=5, principal=outsider).hits)
        assert any(
            "salar" in h.source for h in cairn.search("analyst salary band", k=5, principal=_finance_reader()).hits
        )
        assert cairn.verify().clean
    finally:
        cairn.close()
    after = _digests(home / "vault")
    assert {k: v for k, v in after.items() if k in before} == before  # nothing of the old vault was changed
    reopened = Cairn(Settings(home=home))
    try:
        _check_migrated(reopened)  # imported once: a second start finds the catalog and imports nothing twice
    finally:
        reopened.close()


def test_an_s3_vault_from_before_the_catalog_is_migrated_on_first_start(
    seaweed, seaweed_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder
) -> None:  # type: ignore[no-untyped-def]
    """The same old vault in an S3 bucket (SeaweedFS) migrates the same way."""
    client = seaweed.client()
    for path in LEGACY_VAULT.rglob("*"):
        if path.is_file():
            client.put_object(
                Bucket=seaweed_bucket, Key=f"old/{path.relative_to(LEGACY_VAULT)}", Body=path.read_bytes()
            )
    monkeypatch.setenv("AWS_ENDPOINT_URL", seaweed.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    monkeypatch.setenv("AWS_REGION", seaweed.region)
    cairn = Cairn(Settings(home=tmp_path / "home", store=f"s3://{seaweed_bucket}/old", s3_addressing_style="path"))
    cairn._embedder = embedder
    try:
        _check_migrated(cairn)
        assert cairn.rebuild() > 0
        assert "30 days" in cairn.search("annual leave days", k=1).hits[0].text
    finally:
        cairn.close()


def test_an_unreadable_manifest_fails_clearly_and_changes_nothing(tmp_path: Path) -> None:
    """A damaged manifest stops the migration with an error naming it; the vault's files are untouched."""
    home = tmp_path / "home"
    shutil.copytree(LEGACY_VAULT, home / "vault")
    (home / "vault" / "collections" / "default" / "manifest.json").write_text('{"collection": "default", "dim": ')
    before = _digests(home / "vault")
    cairn = Cairn(Settings(home=home))
    try:
        with pytest.raises(StorageError, match="manifest of collection 'default'"):
            cairn.documents()
    finally:
        cairn.close()
    assert _digests(home / "vault") == before


def test_a_lost_catalog_is_recreated_from_the_vault(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """Delete the catalog database: the next start recreates versions, live pointers, ACL changes and
    take-downs from the vault's records and events, and rebuild makes everything searchable again."""
    home, docs = tmp_path / "home", tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Leave\n\nEmployees get 25 days of annual leave.\n")
    (docs / "salaries.md").write_text("# Salaries\n\nThe analyst salary band runs to 61,000 euros.\n")
    (docs / "old.txt").write_text("The canteen closes at three on Fridays.\n")
    first = Cairn(Settings(home=home))
    first._embedder = embedder
    try:
        first.ingest([docs])
        first.set_access([str(docs / "salaries.md")], allow=["finance"])
        (docs / "leave.md").write_text("# Leave\n\nEmployees get 30 days of annual leave.\n")
        first.ingest([docs])
        first.remove_documents([str(docs / "old.txt")])
        expected = {d.source: (d.version, d.allowed, [v.version for v in d.versions]) for d in first.documents()}
    finally:
        first.close()
    for path in home.glob("catalog.db*"):
        path.unlink()
    second = Cairn(Settings(home=home))
    second._embedder = embedder
    try:
        restored = {d.source: (d.version, d.allowed, [v.version for v in d.versions]) for d in second.documents()}
        assert restored == expected
        assert second.rebuild() > 0
        assert "30 days" in second.search("annual leave", k=1).hits[0].text
        assert not any(h.source.endswith("old.txt") for h in second.search("canteen Fridays", k=5).hits)
        assert any(
            h.source.endswith("salaries.md")
            for h in second.search("analyst salary band", k=5, principal=_finance_reader()).hits
        )
        assert second.verify().clean
    finally:
        second.close()


def test_threads_of_one_process_opening_new_catalogs_at_once_all_get_the_full_schema(tmp_path: Path) -> None:
    """Alembic's `op` is process-wide: three threads migrating three new catalogs at once (as three Cairn
    instances of one service may) each end with every table, none failing on another's step."""
    from sqlalchemy import inspect

    from cairn.catalog.engine import head_revision
    from cairn.catalog.sql import SqlCatalog

    failures: list[str] = []
    opened: list[SqlCatalog] = []

    def open_one(path: Path) -> None:
        try:
            opened.append(SqlCatalog(f"sqlite:///{path}"))
        except Exception as exc:  # each thread's error is the result
            failures.append(str(exc))

    for round_ in range(10):
        threads = [threading.Thread(target=open_one, args=(tmp_path / f"r{round_}-{n}.db",)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    assert len(opened) == 30
    for catalog in opened:
        with catalog.engine.connect() as connection:
            assert "changed_at" in {c["name"] for c in inspect(connection).get_columns("collections")}
            assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == head_revision()
        catalog.close()
