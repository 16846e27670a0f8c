"""A key can make, see and revoke only keys within its own grants; key fields are validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.access import authorize_key_grants, within_grants
from cairn.auth import KeyStore, Principal, parse_duration
from cairn.errors import Forbidden, InvalidRequest
from cairn.vault.backend import LocalDirStore

KB_ADMIN = Principal(key_id="0" * 16, role="admin", tenant="acme", collections=("kb",))
ADMIN = Principal(key_id="1" * 16, role="admin", tenant="acme")
EDITOR = Principal(key_id="2" * 16, role="editor", tenant="acme", collections=("kb", "hr"))


@pytest.mark.parametrize(
    ("principal", "role", "tenant", "collections", "allowed"),
    [
        (KB_ADMIN, "admin", "acme", None, False),  # the escalation of issue 21: limited makes unlimited
        (KB_ADMIN, "admin", "acme", ["kb"], True),
        (KB_ADMIN, "reader", "acme", ["kb", "finance"], False),
        (KB_ADMIN, "reader", "acme", [], True),
        (KB_ADMIN, "reader", "globex", ["kb"], False),
        (ADMIN, "admin", "acme", None, True),
        (ADMIN, "reader", "globex", None, False),
        (EDITOR, "admin", "acme", ["kb"], False),  # a role above its own
        (EDITOR, "editor", "acme", ["hr"], True),
        (None, "admin", "globex", None, True),  # the local administrator (CLI on the host)
    ],
)
def test_a_key_is_within_grants_only_for_the_same_tenant_no_higher_role_and_a_subset_of_collections(
    principal: Principal | None, role: str, tenant: str, collections: list[str] | None, allowed: bool
) -> None:
    """`within_grants` admits exactly the keys that give no more than the principal has."""
    assert within_grants(principal, role=role, tenant=tenant, collections=collections) is allowed  # type: ignore[arg-type]


def test_refusals_say_which_grant_is_exceeded() -> None:
    """Each refusal names what the caller lacks: the tenant, the role or the collections."""
    with pytest.raises(Forbidden, match="collections kb"):
        authorize_key_grants(KB_ADMIN, role="admin", tenant="acme", collections=None)
    with pytest.raises(Forbidden, match="higher role admin"):
        authorize_key_grants(EDITOR, role="admin", tenant="acme", collections=["kb"])
    with pytest.raises(Forbidden, match="tenant 'acme'"):
        authorize_key_grants(ADMIN, role="reader", tenant="globex", collections=None)
    with pytest.raises(InvalidRequest, match="unknown role"):
        authorize_key_grants(ADMIN, role="root", tenant="acme", collections=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("collections", [["../../etc"], [" "], [""], ["KB"], ["kb", "x\x00y"]])
def test_a_keys_collection_list_must_hold_valid_collection_names(tmp_path: Path, collections: list[str]) -> None:
    """Collection grants follow the collection name rule; a bad one is refused with that rule in the message."""
    keys = KeyStore(LocalDirStore(tmp_path / "vault"))
    with pytest.raises(InvalidRequest, match=r"collection list is invalid.*lowercase letters"):
        keys.create(role="reader", tenant="acme", collections=collections)
    assert keys.list() == []


@pytest.mark.parametrize("text", ["0m", "0h", "0d", "00m"])
def test_a_zero_lifetime_is_refused(text: str) -> None:
    """A key that would expire as it is made is a mistake, not a key."""
    with pytest.raises(InvalidRequest, match="longer than zero"):
        parse_duration(text)


def test_positive_lifetimes_still_parse() -> None:
    """Ordinary lifetimes keep working."""
    assert parse_duration("1m").total_seconds() == 60
    assert parse_duration("30d").days == 30


def test_a_collection_limited_key_gives_new_keys_only_its_own_groups() -> None:
    """A kb-limited admin cannot make a finance-group key (it would read finance documents in kb it cannot
    see); an unlimited admin can, and a limited key may pass on groups it has."""
    from cairn.access import authorize_key_identities

    with pytest.raises(Forbidden, match="finance"):
        authorize_key_identities(KB_ADMIN, groups=["finance"], user=None)
    with pytest.raises(Forbidden, match="user"):
        authorize_key_identities(KB_ADMIN, groups=[], user="ceo")
    authorize_key_identities(ADMIN, groups=["finance"], user="ceo")
    hr_admin = KB_ADMIN.model_copy(update={"groups": ("hr",)})
    authorize_key_identities(hr_admin, groups=["hr"], user=None)
