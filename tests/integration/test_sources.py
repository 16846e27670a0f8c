"""Sources on real parts: a folder and a SeaweedFS bucket (not the vault's) synced into Milvus Lite.

Each test names a rule of `cairn.sources`: unchanged objects cost one listing entry, changes become
new versions, deletions and renames are taken down, a failed listing removes nothing, the deletion
guard holds until confirmed, ACL prefixes decide who finds a document, secrets are never stored.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn import Cairn
from cairn.auth import Principal
from cairn.errors import Forbidden, InvalidRequest, SourceError
from cairn.sources import SyncReport
from cairn.sources.kinds import S3Reader
from cairn.stack.seaweed import SeaweedS3

pytestmark = pytest.mark.integration


def _counts(report: SyncReport) -> tuple[int, int, int, int, int]:
    return report.listed, report.unchanged, report.ingested, report.removed, report.held_back


def _note(n: int, word: str = "ledger") -> str:
    return f"# Note {n}\n\nThe {word} entry number {n * 7919 % 10007} is filed in cabinet {n}.\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "handbook"
    (root / "hr").mkdir(parents=True)
    (root / "hr" / "leave.md").write_text("# Leave\n\nEmployees receive 120 days of paid parental leave.\n")
    (root / "safety.md").write_text("# Safety\n\nSwollen lithium batteries go into the fireproof bin.\n")
    (root / "atlas.md").write_text("# Atlas\n\nAtlas serves its API from Frankfurt and Sydney.\n")
    return root


def test_a_folder_source_syncs_changes_deletions_and_renames(cairn: Cairn, folder: Path) -> None:
    """First sync ingests all; a no-change sync fetches and embeds nothing; edits, deletes and renames follow."""
    cairn.add_source("handbook", str(folder), collection="kb")
    assert _counts(cairn.sync_source("handbook")) == (3, 0, 3, 0, 0)
    assert sorted(d.source for d in cairn.documents(collection="kb")) == [
        "handbook/atlas.md",
        "handbook/hr/leave.md",
        "handbook/safety.md",
    ]
    embedded = cairn.embedder.embedded  # type: ignore[attr-defined]
    assert _counts(cairn.sync_source("handbook")) == (3, 3, 0, 0, 0)
    assert cairn.embedder.embedded == embedded  # type: ignore[attr-defined]

    (folder / "safety.md").write_text("# Safety\n\nSwollen batteries go into the sand bucket by the dock.\n")
    (folder / "atlas.md").rename(folder / "atlas-api.md")
    (folder / "hr" / "leave.md").unlink()
    report = cairn.sync_source("handbook")
    assert _counts(report) == (2, 0, 2, 2, 0)
    documents = {d.source: d for d in cairn.documents(collection="kb")}
    assert sorted(documents) == ["handbook/atlas-api.md", "handbook/safety.md"]
    assert documents["handbook/safety.md"].version == 2
    hits = cairn.search("swollen battery", collection="kb", k=3).hits
    assert "sand bucket" in hits[0].text
    assert cairn.source_info("handbook").last_sync["removed"] == 2  # type: ignore[index]


def test_the_deletion_guard_holds_until_confirmed(cairn: Cairn, tmp_path: Path) -> None:
    """Removing more than 10% and more than 10 documents removes none and says so; --confirm-deletions passes."""
    root = tmp_path / "notes"
    root.mkdir()
    for n in range(12):
        (root / f"note-{n:02d}.md").write_text(_note(n))
    cairn.add_source("notes", str(root), collection="kb")
    assert cairn.sync_source("notes").ingested == 12
    for n in range(11):
        (root / f"note-{n:02d}.md").unlink()
    held = cairn.sync_source("notes")
    assert (held.removed, held.held_back) == (0, 11)
    assert held.message is not None
    assert "--confirm-deletions" in held.message
    assert len(cairn.documents(collection="kb")) == 12
    confirmed = cairn.sync_source("notes", confirm_deletions=True)
    assert (confirmed.removed, confirmed.held_back) == (11, 0)
    assert [d.source for d in cairn.documents(collection="kb")] == ["notes/note-11.md"]


@pytest.fixture
def bucket(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, object]]:
    """A bucket of its own (not the vault's), its credentials in environment variables the source names."""
    import uuid

    name = f"source-{uuid.uuid4().hex[:16]}"
    seaweed.create_bucket(name)
    monkeypatch.setenv("SRC_ACCESS_KEY", seaweed.access_key)
    monkeypatch.setenv("SRC_SECRET_KEY", seaweed.secret_key)
    return name, seaweed.client()


def _s3_settings(seaweed: SeaweedS3) -> dict[str, object]:
    return {
        "endpoint": seaweed.endpoint_url,
        "path_style": True,
        "access_key_env": "SRC_ACCESS_KEY",
        "secret_key_env": "SRC_SECRET_KEY",
    }


def test_an_s3_source_syncs_incrementally_at_one_listing_request(
    cairn: Cairn, seaweed: SeaweedS3, bucket: tuple[str, object]
) -> None:
    """Unchanged objects cost one listing request in all; a changed one is fetched again; a deleted one goes."""
    name, client = bucket
    for n in range(5):
        client.put_object(Bucket=name, Key=f"docs/note-{n}.md", Body=_note(n).encode())  # type: ignore[attr-defined]
    client.put_object(Bucket=name, Key="elsewhere/skip.md", Body=b"# Not under the prefix\n")  # type: ignore[attr-defined]
    cairn.add_source("bucket", f"s3://{name}/docs/", collection="kb", settings=_s3_settings(seaweed))
    first = cairn.sync_source("bucket")
    assert _counts(first) == (5, 0, 5, 0, 0)
    assert first.requests == 1 + 5  # one listing page, five fetches
    assert f"s3://{name}/docs/note-3.md" in {d.source for d in cairn.documents(collection="kb")}

    again = cairn.sync_source("bucket")
    assert _counts(again) == (5, 5, 0, 0, 0)
    assert again.requests == 1

    client.put_object(Bucket=name, Key="docs/note-2.md", Body=_note(2, "invoice").encode())  # type: ignore[attr-defined]
    client.delete_object(Bucket=name, Key="docs/note-4.md")  # type: ignore[attr-defined]
    changed = cairn.sync_source("bucket")
    assert _counts(changed) == (4, 3, 1, 1, 0)
    assert changed.requests == 2
    documents = {d.source: d for d in cairn.documents(collection="kb")}
    assert f"s3://{name}/docs/note-4.md" not in documents
    assert documents[f"s3://{name}/docs/note-2.md"].version == 2
    hits = cairn.search("invoice entry", collection="kb", k=1, mode="keyword").hits
    assert hits[0].source == f"s3://{name}/docs/note-2.md"


def test_a_listing_cut_short_by_an_outage_removes_nothing(
    cairn: Cairn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The S3 server is stopped between two listing pages: the sync fails with a clear error and removes nothing."""
    with SeaweedS3(root=tmp_path / "weed") as server:
        client = server.client()
        server.create_bucket("outage")
        for n in range(4):
            client.put_object(Bucket="outage", Key=f"note-{n}.md", Body=_note(n).encode())
        monkeypatch.setenv("SRC_ACCESS_KEY", server.access_key)
        monkeypatch.setenv("SRC_SECRET_KEY", server.secret_key)
        settings = _s3_settings(server)
        record = cairn.add_source("outage", "s3://outage", collection="kb", settings=settings)
        reader = S3Reader(record, client=client)
        assert cairn.sync_source("outage").ingested == 4

        listed = client.list_objects_v2

        def stop_after_first_page(**arguments: object) -> object:
            page = listed(**arguments)
            server.stop()
            return page

        client.list_objects_v2 = stop_after_first_page
        reader.page_size = 2
        from cairn.sources import run_sync

        with pytest.raises(SourceError, match="nothing was removed"):
            run_sync(cairn, "outage", reader=reader, confirm_deletions=True)
    assert len(cairn.documents(collection="kb")) == 4
    last = cairn.source_info("outage").last_sync
    assert last is not None
    assert last["complete"] is False
    assert last["removed"] == 0


def test_acl_prefixes_decide_who_finds_a_document_and_a_change_applies_next_sync(cairn: Cairn, folder: Path) -> None:
    """Documents under hr/ are for group hr only; dropping the map widens them next sync, embedding nothing."""
    cairn.add_source("handbook", str(folder), collection="kb", settings={"acl_prefixes": {"hr/": ["hr"]}})
    cairn.sync_source("handbook")
    outsider = Principal(key_id="0" * 16, role="reader", tenant="default", groups=("ops",))
    hr = Principal(key_id="1" * 16, role="reader", tenant="default", groups=("hr",))
    assert all(
        "leave" not in h.source for h in cairn.search("parental leave", collection="kb", principal=outsider).hits
    )
    assert cairn.search("parental leave", collection="kb", k=1, principal=hr).hits[0].source == "handbook/hr/leave.md"
    cairn.change_source("handbook", settings={"acl_prefixes": None})  # the mapping goes: everyone again
    embedded = cairn.embedder.embedded  # type: ignore[attr-defined]
    report = cairn.sync_source("handbook")
    assert (report.ingested, report.unchanged) == (0, 3)
    assert cairn.embedder.embedded == embedded  # type: ignore[attr-defined]
    hits = cairn.search("parental leave", collection="kb", k=1, principal=outsider).hits
    assert hits[0].source == "handbook/hr/leave.md"


def test_an_acl_tag_decides_who_finds_an_object_and_a_retag_applies_next_sync(
    cairn: Cairn, seaweed: SeaweedS3, bucket: tuple[str, object]
) -> None:
    """An object tagged acl=hr is found by group hr only; retagged acl=ops, the next sync gives it to ops,
    embedding nothing; untagged objects keep the source's ACL. Each object's tags cost one request a sync."""
    name, client = bucket
    client.put_object(Bucket=name, Key="pay.md", Body=_note(1, "payroll").encode(), Tagging="acl=hr")  # type: ignore[attr-defined]
    client.put_object(Bucket=name, Key="menu.md", Body=_note(2, "canteen").encode())  # type: ignore[attr-defined]
    cairn.add_source("bucket", f"s3://{name}", collection="kb", settings={**_s3_settings(seaweed), "acl_tag": "acl"})
    assert cairn.sync_source("bucket").ingested == 2
    hr = Principal(key_id="0" * 16, role="reader", tenant="default", groups=("hr",))
    ops = Principal(key_id="1" * 16, role="reader", tenant="default", groups=("ops",))
    pay = f"s3://{name}/pay.md"

    def finds(principal: Principal) -> set[str]:
        return {h.source for h in cairn.search("payroll entry", collection="kb", k=5, principal=principal).hits}

    assert pay in finds(hr)
    assert pay not in finds(ops)
    assert f"s3://{name}/menu.md" in finds(ops)
    client.put_object_tagging(Bucket=name, Key="pay.md", Tagging={"TagSet": [{"Key": "acl", "Value": "ops"}]})  # type: ignore[attr-defined]
    embedded = cairn.embedder.embedded  # type: ignore[attr-defined]
    report = cairn.sync_source("bucket")
    assert (report.ingested, report.unchanged) == (0, 2)
    assert report.requests == 1 + 2 + 1  # the listing, each object's tags, the retagged object fetched again
    assert cairn.embedder.embedded == embedded  # type: ignore[attr-defined]
    assert pay in finds(ops)
    assert pay not in finds(hr)


def test_settings_never_hold_secrets_and_keys_add_only_s3_sources(cairn: Cairn, folder: Path) -> None:
    """A pasted secret is refused, credentials are environment variable names, and a key cannot add a server folder."""
    with pytest.raises(InvalidRequest, match="unknown settings secret_key"):
        cairn.add_source("x", "s3://b/p", collection="kb", settings={"secret_key": "hunter2"})
    with pytest.raises(InvalidRequest, match="never the credential itself"):
        cairn.add_source("x", "s3://b/p", collection="kb", settings={"secret_key_env": "wJalrXUtnFEMI/K7MDENG"})
    admin = Principal(key_id="2" * 16, role="admin", tenant="default")
    with pytest.raises(Forbidden, match="only S3 sources"):
        cairn.add_source("x", str(folder), collection="kb", principal=admin)
    editor = Principal(key_id="3" * 16, role="editor", tenant="default")
    with pytest.raises(Forbidden):
        cairn.add_source("x", "s3://b/p", collection="kb", principal=editor)
    assert cairn.sources() == []


def _git(repo: Path, *args: str) -> str:
    import subprocess

    env = {
        "GIT_AUTHOR_NAME": "Ada Writer",
        "GIT_AUTHOR_EMAIL": "ada@example.org",
        "GIT_COMMITTER_NAME": "Ada Writer",
        "GIT_COMMITTER_EMAIL": "ada@example.org",
        "HOME": str(repo.parent),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, check=True, text=True)
    return done.stdout.strip()


def test_a_git_source_at_two_commits_keeps_the_commit_in_metadata(cairn: Cairn, tmp_path: Path) -> None:
    """Files at a branch become repo@path documents with the commit and author in metadata, filterable;
    the next commit changes one file and deletes another, and only that is fetched and taken down."""
    repo = tmp_path / "handbook"
    repo.mkdir()
    _git(repo, "init", "--quiet", "--initial-branch=main")
    (repo / "guide").mkdir()
    (repo / "guide" / "install.md").write_text("# Install\n\nRun the installer with the blue key.\n")
    (repo / "faq.md").write_text("# FAQ\n\nThe canteen opens at nine.\n")
    (repo / "old.md").write_text("# Old\n\nThe fax machine lives in room 12.\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "--quiet", "-m", "first")
    first = _git(repo, "rev-parse", "HEAD")
    cairn.add_source("handbook", f"git+{repo}", collection="kb", settings={"ref": "main"})
    assert _counts(cairn.sync_source("handbook")) == (3, 0, 3, 0, 0)
    hit = cairn.search("installer blue key", collection="kb", k=1).hits[0]
    assert hit.source == "handbook@guide/install.md"
    assert hit.metadata["git_commit"] == first
    assert hit.metadata["git_author"] == "Ada Writer <ada@example.org>"

    (repo / "guide" / "install.md").write_text("# Install\n\nRun the installer with the green key.\n")
    (repo / "old.md").unlink()
    _git(repo, "commit", "--quiet", "-am", "second")
    second = _git(repo, "rev-parse", "HEAD")
    assert _counts(cairn.sync_source("handbook")) == (2, 1, 1, 1, 0)
    found = cairn.search(
        "installer key", collection="kb", k=5, filter=f'metadata.git_commit = "{second}"', mode="keyword"
    ).hits
    assert [h.source for h in found] == ["handbook@guide/install.md"]
    assert "green key" in found[0].text
    assert sorted(d.source for d in cairn.documents(collection="kb")) == [
        "handbook@faq.md",
        "handbook@guide/install.md",
    ]


def test_s3_user_metadata_and_tags_land_in_metadata_and_filter_searches(
    cairn: Cairn, seaweed: SeaweedS3, bucket: tuple[str, object]
) -> None:
    """An object's x-amz-meta-* fields and (asked for) its tags are document metadata a filter can select."""
    name, client = bucket
    client.put_object(  # type: ignore[attr-defined]
        Bucket=name, Key="hr.md", Body=_note(1).encode(), Metadata={"team": "hr"}, Tagging="confidential=yes"
    )
    client.put_object(Bucket=name, Key="ops.md", Body=_note(2).encode(), Metadata={"team": "ops"})  # type: ignore[attr-defined]
    cairn.add_source("bucket", f"s3://{name}", collection="kb", settings={**_s3_settings(seaweed), "tags": True})
    assert cairn.sync_source("bucket").ingested == 2
    hits = cairn.search("ledger entry cabinet", collection="kb", k=5, filter='metadata.team = "hr"').hits
    assert {h.source for h in hits} == {f"s3://{name}/hr.md"}
    tagged = cairn.search("ledger entry cabinet", collection="kb", k=5, filter='metadata.tag_confidential = "yes"')
    assert {h.source for h in tagged.hits} == {f"s3://{name}/hr.md"}


def test_a_confirmed_mass_deletion_leaves_no_rows_in_the_index(tmp_path: Path, embedder: object) -> None:
    """70 objects gone at once: held back, then removed with confirmation, and all their rows deleted
    from the engine (Milvus Lite refuses one delete of 64 or more row sets: the index deletes in batches)."""
    from cairn import Settings

    root = tmp_path / "bulk"
    root.mkdir()
    for n in range(70):
        (root / f"note-{n:02d}.md").write_text(_note(n))
    with Cairn(Settings(home=tmp_path / "home", retire_grace_s=0)) as cairn:
        cairn._embedder = embedder  # type: ignore[assignment]
        cairn.add_source("bulk", str(root), collection="kb")
        assert cairn.sync_source("bulk").ingested == 70
        state = cairn.catalog.collection("kb")
        assert state is not None
        assert cairn.index.count(state.index_name) == 70
        shutil.rmtree(root)
        root.mkdir()
        assert cairn.sync_source("bulk").held_back == 70
        assert cairn.sync_source("bulk", confirm_deletions=True).removed == 70
        assert cairn.documents(collection="kb") == []
        assert cairn.index.count(state.index_name) == 0


def test_the_cli_adds_syncs_shows_changes_and_removes_a_source(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cairn sources` end to end: JSON reports, the last sync in list/show, and a schedule set then stopped."""
    import json

    from typer.testing import CliRunner

    from cairn.cli import app

    monkeypatch.setenv("CAIRN_HOME", str(tmp_path / "home"))
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return result.exit_code, result.stdout

    code, out = run("sources", "add", "handbook", str(folder), "-c", "kb", "--every", "1h", "--json")
    assert code == 0, out
    assert json.loads(out)["every_s"] == 3600
    code, out = run("sources", "sync", "handbook", "--json")
    assert code == 0, out
    assert (json.loads(out)["listed"], json.loads(out)["ingested"]) == (3, 3)
    code, out = run("sources", "list", "--json")
    (listed,) = json.loads(out)["sources"]
    assert listed["last_sync"]["ingested"] == 3
    code, out = run("sources", "set", "handbook", "--every", "off", "--json")
    assert (code, json.loads(out)["every_s"]) == (0, None)
    code, out = run("sources", "show", "handbook")
    assert code == 0
    assert "3 listed, 3 ingested" in out
    code, out = run("sources", "rm", "handbook", "--take-down", "--json")
    assert (code, json.loads(out)["taken_down"]) == (0, 3)
    code, out = run("sources", "show", "handbook", "--json")
    assert code == 4
    assert "no source 'handbook'" in json.loads(out)["error"]
