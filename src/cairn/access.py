"""Who may do what, and see which documents: the one place retrieval is constrained.

Every retrieval path (search, ask, document listing, versions and downloads) goes through
`retrieval_filter` (for the engine) and `permits` (for a document record); both derive from the
same rule: a principal sees a document when the document's tenant is the principal's tenant and
the document's ``allowed`` list holds ``*`` or one of the principal's identities (``group:hr``,
``user:alice``, ``key:<id>``). The engine filter makes searches efficient; `permits`, checked
against the published manifest, is authoritative, so a changed ACL or a removed document takes
effect for the very next request even before every index row is updated.

Keys follow the same rule: a key can create, list and revoke only keys within its own grants
(`within_grants`), so no key can mint or remove one wider than itself.

``principal=None`` means a trusted local caller (the CLI on the host, which can read the vault
anyway) and is not constrained.
"""

from __future__ import annotations

import json
from collections.abc import Collection

from cairn.auth import ROLES, Principal, Role
from cairn.errors import Forbidden, InvalidRequest
from cairn.vault.manifest import DocumentRecord

__all__ = ["ACTIONS", "authorize", "authorize_key_grants", "permits", "retrieval_filter", "within_grants"]

# The least role each action needs.
ACTIONS: dict[str, Role] = {
    "search": "reader",
    "read": "reader",
    "ingest": "editor",
    "delete": "editor",
    "acl": "editor",
    "manage": "admin",
}


def authorize(principal: Principal | None, action: str, collection: str | None = None) -> None:
    """Raise `Forbidden` unless the principal's role and grants allow *action* on *collection*."""
    if principal is None:
        return
    needed = ACTIONS[action]
    if not principal.at_least(needed):
        raise Forbidden(f"this key's role ({principal.role}) may not {action}; it needs {needed} or above")
    if collection is not None and not principal.may_use(collection):
        raise Forbidden(f"this key has no grant for collection {collection!r}")


def within_grants(principal: Principal | None, *, role: Role, tenant: str, collections: Collection[str] | None) -> bool:
    """Whether a key with these grants could do nothing the principal cannot: the same tenant, a role
    not above the principal's, and collections among the principal's (an unlimited key only from an
    unlimited principal)."""
    if principal is None:
        return True
    if tenant != principal.tenant or not principal.at_least(role):
        return False
    if principal.collections is None:
        return True
    return collections is not None and set(collections) <= set(principal.collections)


def authorize_key_identities(principal: Principal | None, *, groups: Collection[str], user: str | None) -> None:
    """A key limited to some collections may give a new key only groups and a user name it has itself.

    Groups and user names are document permissions: without this, an admin limited to ``kb`` could make
    a key in group ``finance`` and read, in ``kb``, the finance documents it cannot see itself.
    """
    if principal is None or principal.collections is None:
        return
    extra = set(groups) - set(principal.groups)
    if extra:
        raise Forbidden(
            f"this key is limited to some collections and may give new keys only its own groups; "
            f"it is not in {', '.join(sorted(extra))}"
        )
    if user is not None and user != principal.user:
        raise Forbidden("this key is limited to some collections and may not give new keys another user's name")


def authorize_key_grants(
    principal: Principal | None, *, role: Role, tenant: str, collections: Collection[str] | None
) -> None:
    """Raise `Forbidden` unless the principal may make a key with these grants (see `within_grants`)."""
    if role not in ROLES:
        raise InvalidRequest(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if principal is None or within_grants(principal, role=role, tenant=tenant, collections=collections):
        return
    if tenant != principal.tenant:
        raise Forbidden(f"this key belongs to tenant {principal.tenant!r} and cannot make keys for another")
    if not principal.at_least(role):
        raise Forbidden(f"this key's role ({principal.role}) cannot make a key with the higher role {role}")
    granted = ", ".join(principal.collections or ())
    raise Forbidden(f"this key may use only the collections {granted}; a key it makes must be limited to them too")


def permits(principal: Principal | None, doc: DocumentRecord | None) -> bool:
    """Whether the principal may see the document (a missing document is never visible)."""
    if doc is None:
        return False
    if principal is None:
        return True
    return doc.tenant == principal.tenant and bool(set(doc.allowed) & set(principal.identities))


def retrieval_filter(principal: Principal | None, user_filter: str | None = None) -> str:
    """The engine expression a search runs with: the user's filter AND the principal's constraints.

    The user's filter comes compiled from the parsed grammar (`cairn.filters`), never raw; it is
    parenthesised, and the constraints follow it, so nothing in it can widen what they allow.
    """
    parts = [f"({user_filter})"] if user_filter else []
    if principal is not None:
        identities = ", ".join(json.dumps(name) for name in principal.identities)
        parts.append(f"(tenant == {json.dumps(principal.tenant)} and array_contains_any(allowed, [{identities}]))")
    return " and ".join(parts)
