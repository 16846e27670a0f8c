"""API keys and the principals they authenticate.

A key is shown once, when it is created: ``cairn_<key id>_<secret>``. The vault keeps only the
SHA-256 of the secret (the secret is 256 random bits, so a fast hash is as strong as a slow one),
under ``auth/keys/<key id>.json``. Every authentication reads the key's record afresh, so a
revoked or expired key fails on the very next request.

Roles: ``reader`` searches and asks; ``editor`` also ingests, deletes and changes ACLs in the
collections it is granted; ``admin`` also manages keys and collections. Every key belongs to one
tenant and sees nothing of another.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, Field

from cairn.errors import InvalidRequest, NotFound, Unauthenticated
from cairn.settings import validate_collection_name
from cairn.vault.backend import ObjectStore

__all__ = ["ROLES", "ApiKey", "KeyStore", "Principal", "Role", "parse_duration", "validate_name"]

Role = Literal["reader", "editor", "admin"]
ROLES: tuple[Role, ...] = ("reader", "editor", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_TOKEN = re.compile(r"^cairn_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_DURATION = re.compile(r"^(\d{1,5})([dhm])$")


def validate_name(value: str, what: str) -> str:
    """Tenants, groups and user names: 1-64 of letters, digits and ``_ . @ -``, starting with a letter or digit."""
    if not _NAME.fullmatch(value):
        raise InvalidRequest(
            f"invalid {what} {value!r}: use 1-64 letters, digits, '_', '.', '@' or '-', starting with a letter or digit"
        )
    return value


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h`` or ``45m``; never zero (a key that expires as it is made is a mistake)."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise InvalidRequest(f"invalid duration {text!r}: use a number and d, h or m, such as 30d")
    amount, unit = int(match.group(1)), match.group(2)
    if amount == 0:
        raise InvalidRequest(f"invalid duration {text!r}: it must be longer than zero, such as 30d")
    return {"d": timedelta(days=amount), "h": timedelta(hours=amount), "m": timedelta(minutes=amount)}[unit]


class Principal(BaseModel):
    """Who is asking: the authenticated key's role, tenant, groups and grants."""

    model_config = {"frozen": True}

    key_id: str
    role: Role
    tenant: str
    user: str | None = None
    groups: tuple[str, ...] = ()
    collections: tuple[str, ...] | None = None  # None: every collection of the tenant

    def at_least(self, role: Role) -> bool:
        return _RANK[self.role] >= _RANK[role]

    def may_use(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections

    @property
    def identities(self) -> tuple[str, ...]:
        """The ACL entries that admit this principal: everyone, its groups, its user name, its key."""
        names = ["*", *(f"group:{g}" for g in self.groups), f"key:{self.key_id}"]
        if self.user:
            names.append(f"user:{self.user}")
        return tuple(names)


class ApiKey(BaseModel):
    """A key as stored (no secret) and as listed."""

    key_id: str
    digest: str = Field(repr=False)
    role: Role
    tenant: str
    user: str | None = None
    groups: list[str] = Field(default_factory=list)
    collections: list[str] | None = None
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None

    def principal(self) -> Principal:
        return Principal(
            key_id=self.key_id,
            role=self.role,
            tenant=self.tenant,
            user=self.user,
            groups=tuple(self.groups),
            collections=tuple(self.collections) if self.collections is not None else None,
        )


class KeyStore:
    """API keys kept hashed in the vault."""

    def __init__(self, store: ObjectStore, prefix: str = "auth/keys/") -> None:
        self.store = store
        self.prefix = prefix

    def _key(self, key_id: str) -> str:
        return f"{self.prefix}{key_id}.json"

    def create(
        self,
        *,
        role: Role,
        tenant: str,
        user: str | None = None,
        groups: list[str] | None = None,
        collections: list[str] | None = None,
        expires_in: timedelta | None = None,
    ) -> tuple[str, ApiKey]:
        """Make a key; return the token (shown once) and its stored record."""
        if role not in ROLES:
            raise InvalidRequest(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
        validate_name(tenant, "tenant")
        for group in groups or []:
            validate_name(group, "group")
        if user is not None:
            validate_name(user, "user")
        for collection in collections or []:
            try:
                validate_collection_name(collection)
            except ValueError as exc:
                raise InvalidRequest(f"the key's collection list is invalid: {exc}") from exc
        if expires_in is not None and expires_in.total_seconds() <= 0:
            raise InvalidRequest("a key's lifetime must be longer than zero, such as 30d")
        now = time.time()
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        record = ApiKey(
            key_id=key_id,
            digest=hashlib.sha256(secret.encode()).hexdigest(),
            role=role,
            tenant=tenant,
            user=user,
            groups=sorted(set(groups or [])),
            collections=sorted(set(collections)) if collections is not None else None,
            created_at=now,
            expires_at=now + expires_in.total_seconds() if expires_in else None,
        )
        if not self.store.put_if_absent(self._key(key_id), record.model_dump_json().encode()):
            raise InvalidRequest("key id collision; try again")  # 64 random bits: practically never
        return f"cairn_{key_id}_{secret}", record

    def get(self, key_id: str) -> ApiKey:
        if not re.fullmatch(r"[0-9a-f]{16}", key_id):
            raise NotFound(f"no key {key_id!r}")
        try:
            raw = self.store.get(self._key(key_id))
        except NotFound as exc:
            raise NotFound(f"no key {key_id!r}; `cairn keys list` shows the keys") from exc
        return ApiKey.model_validate_json(raw)

    def list(self) -> list[ApiKey]:
        return [ApiKey.model_validate_json(self.store.get(k)) for k in self.store.list(self.prefix)]

    def revoke(self, key_id: str) -> ApiKey:
        record = self.get(key_id)
        if record.revoked_at is None:
            record.revoked_at = time.time()
            self.store.put(self._key(key_id), record.model_dump_json().encode())
        return record

    def has_admin(self) -> bool:
        now = time.time()
        return any(k.role == "admin" and _usable(k, now) for k in self.list())

    def authenticate(self, token: str | None) -> Principal:
        """The principal of a bearer token; `Unauthenticated` with the reason otherwise."""
        if not token:
            raise Unauthenticated("no API key: send `Authorization: Bearer cairn_...`")
        match = _TOKEN.fullmatch(token.strip())
        if not match:
            raise Unauthenticated("malformed API key")
        key_id, secret = match.groups()
        try:
            record = self.get(key_id)
        except NotFound as exc:
            raise Unauthenticated("unknown API key") from exc
        if not hmac.compare_digest(record.digest, hashlib.sha256(secret.encode()).hexdigest()):
            raise Unauthenticated("unknown API key")
        if record.revoked_at is not None:
            raise Unauthenticated("this API key was revoked")
        if not _usable(record, time.time()):
            raise Unauthenticated("this API key has expired")
        return record.principal()


def _usable(record: ApiKey, now: float) -> bool:
    return record.revoked_at is None and (record.expires_at is None or record.expires_at > now)
