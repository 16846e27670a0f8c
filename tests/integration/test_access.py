"""Keys, roles, tenant isolation and document ACLs, enforced by cairn itself (the HTTP layer only passes principals)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest

from cairn import Cairn
from cairn.auth import KeyStore, Principal
from cairn.errors import Forbidden, NotFound, Unauthenticated

pytestmark = pytest.mark.integration


@pytest.fixture
def keys(cairn: Cairn) -> KeyStore:
    return KeyStore(cairn.vault.store)


@pytest.fixture
def tenants(cairn: Cairn, tmp_path: Path) -> tuple[Path, Path]:
    """Two tenants' folders, each with a document only it holds, ingested with their tenant and ACL."""
    acme, globex = tmp_path / "acme", tmp_path / "globex"
    acme.mkdir()
    globex.mkdir()
    (acme / "salaries.md").write_text("# Salaries\n\nThe acme salary band for engineers tops out at 180k.\n")
    (acme / "handbook.md").write_text("# Handbook\n\nAcme staff get 30 days of paid holiday.\n")
    (globex / "secret.md").write_text("# Project Orchid\n\nThe globex salary band for engineers tops out at 250k.\n")
    cairn.ingest([acme / "salaries.md"], tenant="acme", allow=["hr"])
    cairn.ingest([acme / "handbook.md"], tenant="acme")
    cairn.ingest([globex], tenant="globex")
    return acme, globex


def reader(tenant: str, *groups: str, key: str = "0" * 16) -> Principal:
    return Principal(key_id=key, role="reader", tenant=tenant, groups=groups)


def test_keys_are_shown_once_stored_hashed_and_revocable(keys: KeyStore) -> None:
    """The token authenticates; the vault holds only its hash; revoked and expired keys fail next time."""
    token, record = keys.create(role="editor", tenant="acme", groups=["hr"], collections=["default"])
    principal = keys.authenticate(token)
    assert (principal.role, principal.tenant, principal.groups, principal.collections) == (
        "editor",
        "acme",
        ("hr",),
        ("default",),
    )
    stored = keys.store.get(f"auth/keys/{record.key_id}.json")
    # The token is cairn_<key id>_<secret>; the secret may itself contain "_", so split from the left.
    secret = token.split("_", 2)[2]
    assert len(secret) == 43
    assert secret.encode() not in stored
    assert json.loads(stored)["digest"] == record.digest

    with pytest.raises(Unauthenticated, match="unknown"):
        keys.authenticate(token[:-4] + "AAAA")
    keys.revoke(record.key_id)
    with pytest.raises(Unauthenticated, match="revoked"):
        keys.authenticate(token)
    short, _ = keys.create(role="reader", tenant="acme", expires_in=timedelta(minutes=1))
    assert keys.authenticate(short).role == "reader"
    later = time.time() + 120
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time", lambda: later)
        with pytest.raises(Unauthenticated, match="expired"):
            keys.authenticate(short)
    with pytest.raises(Unauthenticated, match="no API key"):
        keys.authenticate(None)


def test_a_tenant_never_sees_another_tenants_documents(cairn: Cairn, tenants: tuple[Path, Path]) -> None:
    """Searching the other tenant's exact words, listing and fetching by path all come back empty or not found."""
    _, globex = tenants
    acme_hr = reader("acme", "hr")
    for mode in ("hybrid", "dense", "keyword"):
        hits = cairn.search(
            "globex salary band for engineers 250k Project Orchid", k=10, mode=mode, principal=acme_hr
        ).hits  # type: ignore[arg-type]
        assert hits
        assert all(h.source.startswith("acme/") for h in hits)
    assert all(d.source.startswith("acme/") for d in cairn.documents(principal=acme_hr))
    with pytest.raises(NotFound):
        cairn.document_bytes(str(globex / "secret.md"), principal=acme_hr)
    with pytest.raises(NotFound):
        cairn.remove_documents(
            [str(globex / "secret.md")], principal=Principal(key_id="1" * 16, role="editor", tenant="acme")
        )
    assert any(
        h.source.endswith("secret.md") for h in cairn.search("Project Orchid", k=3, principal=reader("globex")).hits
    )


def test_document_acls_admit_only_their_groups_and_changes_apply_to_the_next_request(
    cairn: Cairn, tenants: tuple[Path, Path]
) -> None:
    """The hr-only document is invisible to other acme readers until its ACL is widened, and again after narrowing."""
    acme, _ = tenants
    query = "acme salary band for engineers"
    outsider, hr = reader("acme", "sales"), reader("acme", "hr")
    assert any(h.source.endswith("salaries.md") for h in cairn.search(query, k=5, principal=hr).hits)
    assert not any(h.source.endswith("salaries.md") for h in cairn.search(query, k=5, principal=outsider).hits)

    cairn.set_access([str(acme / "salaries.md")], allow=["*"], tenant="acme")
    assert any(h.source.endswith("salaries.md") for h in cairn.search(query, k=5, principal=outsider).hits)
    cairn.set_access([str(acme / "salaries.md")], allow=["hr", "user:ceo"], tenant="acme")
    assert not any(h.source.endswith("salaries.md") for h in cairn.search(query, k=5, principal=outsider).hits)
    ceo = Principal(key_id="2" * 16, role="reader", tenant="acme", user="ceo")
    assert any(h.source.endswith("salaries.md") for h in cairn.search(query, k=5, principal=ceo).hits)
    # A plain re-ingest (no --tenant/--allow) never widens an ACL.
    cairn.ingest([acme])
    assert not any(h.source.endswith("salaries.md") for h in cairn.search(query, k=5, principal=outsider).hits)


def test_roles_and_collection_grants_are_enforced(cairn: Cairn, tenants: tuple[Path, Path], tmp_path: Path) -> None:
    """Readers cannot ingest or delete; grants bind editors to collections; no key writes into another tenant."""
    acme, _ = tenants
    doc = tmp_path / "new.md"
    doc.write_text("# New\n\nA new acme note.\n")
    with pytest.raises(Forbidden, match="needs editor"):
        cairn.ingest([doc], principal=reader("acme"))
    with pytest.raises(Forbidden, match="needs editor"):
        cairn.remove_documents([str(acme / "handbook.md")], principal=reader("acme"))
    elsewhere = Principal(key_id="3" * 16, role="editor", tenant="acme", collections=("other",))
    with pytest.raises(Forbidden, match="no grant"):
        cairn.ingest([doc], principal=elsewhere)
    editor = Principal(key_id="4" * 16, role="editor", tenant="acme", collections=("default",))
    with pytest.raises(Forbidden, match="tenant"):
        cairn.ingest([doc], tenant="globex", principal=editor)
    assert cairn.ingest([doc], principal=editor).ingested == 1
    assert [d.tenant for d in cairn.documents(principal=editor) if d.source.endswith("new.md")] == ["acme"]
    cairn.remove_documents([str(acme / "handbook.md")], principal=editor)
    assert not any(h.source.endswith("handbook.md") for h in cairn.search("paid holiday", k=5, principal=editor).hits)


def test_user_filters_narrow_results_but_never_widen_access(cairn: Cairn, tenants: tuple[Path, Path]) -> None:
    """A parsed filter narrows a search; filters naming tenant/ACL fields or injecting syntax are refused."""
    from cairn.errors import InvalidRequest

    acme, _ = tenants
    hr = reader("acme", "hr")
    narrowed = cairn.search("salary band", k=5, principal=hr, filter=f'source ~ "{acme.name}/hand"').hits
    assert narrowed
    assert all(h.source.endswith("handbook.md") for h in narrowed)
    as_json = cairn.search(
        "salary band", k=5, principal=hr, filter=[{"field": "mime", "op": "=", "value": "text/markdown"}]
    )
    assert all(h.source.startswith("acme/") for h in as_json.hits)
    for hostile in ['tenant = "globex"', 'source = "x") or (tenant == "globex"', 'allowed in ["*"]', "1 == 1"]:
        with pytest.raises(InvalidRequest):
            cairn.search("salary band", k=5, principal=hr, filter=hostile)
    widened = cairn.search("globex salary band 250k", k=10, principal=hr, filter='source ~ "secret"').hits
    assert widened == []


def test_changes_and_keyed_retrievals_are_audited_in_a_verifiable_chain(
    cairn: Cairn, tenants: tuple[Path, Path]
) -> None:
    """Ingests, ACL changes and key management are recorded with their actor; a keyed search records the
    documents it returned; the chain verifies, and an edited record is caught."""
    acme, _ = tenants
    hr = reader("acme", "hr")
    hits = cairn.search("acme salary band", k=3, principal=hr).hits
    cairn.set_access([str(acme / "handbook.md")], allow=["ops"], tenant="acme")
    _token, record = cairn.create_key(role="reader", tenant="acme")
    cairn.revoke_key(record.key_id)

    records = list(cairn.audit.records())
    actions = [r.action for r in records]
    assert actions[:3] == ["ingest", "ingest", "ingest"]
    search = next(r for r in records if r.action == "search")
    assert search.actor == f"key:{hr.key_id}"
    assert set(search.documents) == {h.doc_id for h in hits}
    assert {"acl.change", "key.create", "key.revoke"} <= set(actions)
    assert all(r.actor.startswith(("cli:", "key:")) for r in records)
    assert cairn.audit.verify().ok

    key = f"audit/{search.seq:012d}.json"
    cairn.vault.store.put(key, cairn.vault.store.get(key).replace(b'"search"', b'"ingest"'))
    verification = cairn.audit.verify()
    assert not verification.ok
    assert any(f"seq {search.seq}" in problem for problem in verification.problems)


def test_a_new_version_without_an_acl_keeps_the_old_acl(cairn: Cairn, tenants: tuple[Path, Path]) -> None:
    """Changing a restricted document and ingesting it with only a tenant (as an upload does) never widens its ACL.

    The editor is in the document's group: replacing a document needs the right to see it (issue 21)."""
    acme, _ = tenants
    (acme / "salaries.md").write_text("# Salaries\n\nThe acme salary band for engineers tops out at 190k.\n")
    editor = Principal(key_id="5" * 16, role="editor", tenant="acme", groups=("hr",))
    assert cairn.ingest([acme / "salaries.md"], principal=editor).ingested == 1
    info = cairn.document(str(acme / "salaries.md"))
    assert (info.version, info.allowed) == (2, ["group:hr"])
    outsider = reader("acme", "sales")
    assert not any(h.source.endswith("salaries.md") for h in cairn.search("salary band", k=5, principal=outsider).hits)


def test_another_tenants_text_is_not_revealed_by_the_embedding_cache(cairn: Cairn, tmp_path: Path) -> None:
    """Issue 21's oracle: a globex editor uploading the exact text of an acme document has it embedded like any
    guess (no cache hit to time), while acme re-ingesting the same text elsewhere is served from its cache."""
    secret = "# Merger\n\nAcme will acquire Initech for 41 million dollars on 3 May.\n"
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "merger.md").write_text(secret)
    cairn.ingest([tmp_path / "acme" / "merger.md"], tenant="acme", allow=["board"])
    spy = cairn._embedder
    globex = Principal(key_id="9" * 16, role="editor", tenant="globex")
    guesses = tmp_path / "guesses"
    guesses.mkdir()
    (guesses / "right.md").write_text(secret)
    (guesses / "wrong.md").write_text(secret.replace("41", "42"))
    embedded: dict[str, int] = {}
    for name in ("right.md", "wrong.md"):
        before = spy.embedded  # type: ignore[attr-defined]
        cairn.ingest([guesses / name], collection="guesses", principal=globex)  # globex's own collection
        embedded[name] = spy.embedded - before  # type: ignore[attr-defined]
    assert embedded["right.md"] == embedded["wrong.md"] > 0
    (tmp_path / "acme" / "copy").mkdir()
    (tmp_path / "acme" / "copy" / "merger.md").write_text(secret)
    before = spy.embedded  # type: ignore[attr-defined]
    cairn.ingest([tmp_path / "acme" / "copy" / "merger.md"], tenant="acme", allow=["board"])
    assert spy.embedded == before  # type: ignore[attr-defined]
