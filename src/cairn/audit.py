"""An append-only, hash-chained audit log kept in the vault (any `ObjectStore`), and its verifier.

Each event is one immutable object, ``{prefix}{seq:012d}.json`` (``audit/000000000001.json``, ...),
holding an `AuditRecord` as canonical JSON (sorted keys, no whitespace, UTF-8). Every record carries

* ``hash``: the SHA-256 of its own canonical JSON without the ``hash`` field, and
* ``prev``: the ``hash`` of the record before it (64 zeros for seq 1),

so the records form a chain: changing, removing, inserting or reordering one breaks a hash or a link.
Writers never overwrite: a record is created with `ObjectStore.put_if_absent`, and two writers (threads
or processes, on one machine or many) that race for the same seq see one of them win; the loser reads
the new head and tries the next seq. The chain therefore never forks and never has gaps.

What `AuditLog.verify` detects, reading the log once, in order:

* a **modified record** — its bytes no longer hash to its ``hash`` field (or, on an encrypted vault or S3,
  the store itself refuses the bytes as altered);
* a **broken link** — a record's ``prev`` is not the hash of the record before it: a record was rewritten
  *with* a recomputed hash, or records were inserted, removed and renumbered, or reordered;
* a **gap** — a seq with no record: a record was deleted from the middle (or the start);
* an **unparsable record** — not JSON, or not a valid `AuditRecord`;
* a **misplaced record** — the ``seq`` inside a record disagrees with the key it is stored under
  (records swapped or copied between keys), and objects under the prefix that are not records at all;
* **truncation of the tail** and **rewriting of the whole chain** — only against a head (seq and hash)
  kept outside the store: `AuditLog.head` returns it, and ``verify(expected_head=...)`` checks that the
  record at that seq still exists and still has that hash.

What it cannot detect on its own: anyone who can write to the store can delete the newest records (the
remaining chain is still consistent), or rewrite every record from some point on with fresh hashes and
links (the forged chain is consistent too). Both are caught only against a head noted elsewhere (a
ticket, a log shipper, a second store) at a later time than the records in question. Hashes are not
signatures: they prove the log is *unchanged since the head you kept*, not who wrote it. To make records
undeletable and unchangeable rather than merely tamper-evident, keep the vault in an S3 bucket with
Object Lock and put the audit prefix under COMPLIANCE retention (or a bucket default retention): the
store then refuses deletes and overwrites of existing record versions until the retention ends.

Writers on several hosts rely on the store's atomic create-if-absent: a local directory (``link``), and S3
stores that honour ``If-None-Match: *`` on PUT (AWS S3, MinIO, SeaweedFS). On an S3 store without it,
`S3Store.put_if_absent` falls back to check-then-write, and two racing writers could both take a seq;
the second record replaces the first, and `verify` reports the lost record as a broken link.

An unreadable newest record stops `append` with `IntegrityError` (the log fails closed rather than
chaining onto bytes it cannot check); `verify` says what is wrong with it.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cairn.errors import IntegrityError, InvalidRequest, NotFound, StorageError
from cairn.vault.backend import ObjectStore

__all__ = [
    "GENESIS",
    "AuditHead",
    "AuditLog",
    "AuditRecord",
    "AuditVerification",
    "Outcome",
    "canonical_json",
    "record_hash",
]

# The ``prev`` of the first record: there is nothing before it.
GENESIS = "0" * 64

Outcome = Literal["ok", "denied", "error"]

_HEX64 = r"^[0-9a-f]{64}$"
_KEY_NAME = re.compile(r"^(\d{12})\.json$")


def canonical_json(value: dict[str, Any]) -> bytes:
    """The one byte form of a JSON object that the hashes are computed over: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(fields: dict[str, Any]) -> str:
    """Hex SHA-256 of a record's canonical JSON without its ``hash`` field."""
    body = {name: value for name, value in fields.items() if name != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def _reasons(exc: ValidationError) -> str:
    """A validation error on one line: ``field: message; ...``."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors())


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class AuditRecord(BaseModel):
    """One audited event. ``at`` is an ISO 8601 UTC timestamp string (``2025-01-31T12:00:00.123456Z``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=1)
    at: str
    actor: str = Field(min_length=1, description='A key id, or "cli:<user>".')
    action: str = Field(min_length=1, description='"search", "ask", "ingest", "document.delete", "key.revoke", ...')
    collection: str | None = None
    target: str | None = Field(default=None, description="A document id or key id the action was on.")
    documents: list[str] = Field(default_factory=list, description="Document ids a retrieval returned.")
    outcome: Outcome = "ok"
    detail: str | None = Field(default=None, max_length=1000)
    prev: str = Field(pattern=_HEX64)
    hash: str = Field(pattern=_HEX64)

    @field_validator("at")
    @classmethod
    def _utc_iso8601(cls, value: str) -> str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"at={value!r} is not an ISO 8601 timestamp") from exc
        if moment.utcoffset() != timedelta(0):
            raise ValueError(f"at={value!r} is not in UTC")
        return value

    def canonical_bytes(self) -> bytes:
        """The record as stored: canonical JSON including ``hash``."""
        return canonical_json(self.model_dump(mode="json"))


class AuditHead(NamedTuple):
    """The newest record's seq and hash: note it outside the store to detect truncation and rewrites later."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> AuditHead:
        """Read ``SEQ:HASH`` (as `str` writes it)."""
        seq, _, digest = text.strip().partition(":")
        if not seq.isdigit() or int(seq) < 1 or not re.match(_HEX64, digest.lower()):
            raise InvalidRequest(f"audit head {text!r} is not SEQ:HASH (a seq from 1 and a 64-digit hex SHA-256)")
        return cls(int(seq), digest.lower())


EMPTY_HEAD = AuditHead(0, GENESIS)


class AuditVerification(BaseModel):
    """The outcome of `AuditLog.verify`: ``ok`` when no problem was found; each problem names its seq."""

    records: int = Field(description="Record objects found under the prefix.")
    ok: bool
    problems: list[str] = Field(default_factory=list)
    head_seq: int = Field(0, description="Seq of the last record read (0 for an empty log).")
    head_hash: str = Field(GENESIS, description="Hash of the last record read; note SEQ:HASH to anchor the log.")


class AuditLog:
    """The audit log under *prefix* in *store*.

    `append` is safe from many threads (one lock per log object) and from many processes or hosts
    sharing the store (records are created with ``put_if_absent``; a writer that loses a seq re-reads
    the head and retries, at most *max_attempts* times).
    """

    def __init__(self, store: ObjectStore, prefix: str = "audit/", *, max_attempts: int = 100) -> None:
        if not prefix.endswith("/") or prefix.startswith("/"):
            raise InvalidRequest(f"audit prefix {prefix!r} must be a relative folder ending in '/' (like 'audit/')")
        if max_attempts < 1:
            raise InvalidRequest(f"max_attempts={max_attempts} must be at least 1")
        self.store = store
        self.prefix = prefix
        self.max_attempts = max_attempts
        self._lock = threading.Lock()
        self._head: AuditHead | None = None  # None until first read from the store

    # -- writing -------------------------------------------------------------------------------
    def append(
        self,
        *,
        actor: str,
        action: str,
        outcome: Outcome = "ok",
        collection: str | None = None,
        target: str | None = None,
        documents: Iterable[str] = (),
        detail: str | None = None,
    ) -> AuditRecord:
        """Write one record after the current head and return it; raise `StorageError` if it keeps losing races."""
        fields: dict[str, Any] = {
            "actor": actor,
            "action": action,
            "outcome": outcome,
            "collection": collection,
            "target": target,
            "documents": list(documents),
            "detail": detail,
        }
        with self._lock:
            head = self._head if self._head is not None else self._head_from_listing()
            for attempt in range(self.max_attempts):
                record, data = self._seal(fields, head)
                if self.store.put_if_absent(self._key(record.seq), data):
                    self._head = AuditHead(record.seq, record.hash)
                    return record
                # Another writer took this seq. Back off a little (so that many writers do not keep colliding
                # in lockstep), then catch up to the newest record: catching up first would leave us a head
                # that went stale while we slept, and a busy writer would starve us.
                time.sleep(random.uniform(0, min(0.05, 0.0005 * 2**attempt)))
                head = self._head_after(head)
            self._head = None
            raise StorageError(
                f"could not append to the audit log at {self.describe()}: lost the race for "
                f"the next record {self.max_attempts} times; other writers are very busy, retry later",
                key=self._key(head.seq + 1),
            )

    @staticmethod
    def _seal(fields: dict[str, Any], head: AuditHead) -> tuple[AuditRecord, bytes]:
        """The record that follows *head*, with its hash, and the bytes to store."""
        try:
            draft = AuditRecord(**fields, seq=head.seq + 1, at=_utc_now(), prev=head.hash, hash=GENESIS)
            record = draft.model_copy(update={"hash": record_hash(draft.model_dump(mode="json"))})
            return record, record.canonical_bytes()
        except ValidationError as exc:
            raise InvalidRequest(f"invalid audit record: {_reasons(exc)}") from exc

    # -- reading -------------------------------------------------------------------------------
    def describe(self) -> str:
        """Where the records live, for messages (``/home/me/.cairn/vault/audit/``, ``s3://b/p/audit/``)."""
        return f"{self.store.describe().rstrip('/')}/{self.prefix}"

    def head(self) -> AuditHead:
        """The newest record's (seq, hash), read from the store; ``(0, 64 zeros)`` for an empty log."""
        with self._lock:
            self._head = self._head_from_listing()
            return self._head

    def records(self, start: int = 1) -> Iterator[AuditRecord]:
        """Every record from seq *start* on, in order, streamed; raise `IntegrityError` on an unreadable one."""
        for seq, key in self._record_keys():
            if seq >= start:
                yield self._read(key)

    def verify(self, expected_head: AuditHead | tuple[int, str] | None = None) -> AuditVerification:
        """Walk the whole log once and report every modified, missing, misplaced or unlinked record.

        With *expected_head* (a head noted earlier), also report when that record is gone (the tail was
        truncated) or has a different hash (the chain was rewritten from there or before).
        """
        anchor = AuditHead(*expected_head) if expected_head is not None else None
        problems: list[str] = []
        count = 0
        expected_seq = 1
        # Hash of the previous record, or None where it is unknown (missing or unreadable): no link check then.
        prev_hash: str | None = GENESIS
        last = EMPTY_HEAD
        anchor_seen = False
        for seq, key in self._keys_checked(problems):
            count += 1
            if seq > expected_seq:
                span = f"seq {expected_seq}" if seq == expected_seq + 1 else f"seq {expected_seq} to seq {seq - 1}"
                problems.append(f"{span}: missing — the log jumps from seq {expected_seq - 1} to {seq} (deleted)")
                prev_hash = None
            expected_seq = seq + 1
            record, actual_hash = self._check_record(seq, key, prev_hash, problems)
            prev_hash = record.hash if record is not None else None
            if record is not None:
                last = AuditHead(seq, record.hash)
            if anchor is not None and seq == anchor.seq:
                anchor_seen = True
                if actual_hash != anchor.hash:
                    problems.append(
                        f"seq {seq}: hash {actual_hash or 'unreadable'} differs from the externally kept head "
                        f"{anchor.hash}: the chain was rewritten at or before this record"
                    )
        if anchor is not None and not anchor_seen and anchor.seq >= expected_seq:
            problems.append(
                f"seq {anchor.seq}: missing, but the externally kept head is at seq {anchor.seq} and the log "
                f"ends at seq {expected_seq - 1}: records were deleted from the tail (truncation)"
            )
        # (A kept head inside a gap is already reported as missing with the gap.)
        return AuditVerification(
            records=count, ok=not problems, problems=problems, head_seq=last.seq, head_hash=last.hash
        )

    # -- internals -----------------------------------------------------------------------------
    def _key(self, seq: int) -> str:
        return f"{self.prefix}{seq:012d}.json"

    def _record_keys(self) -> Iterator[tuple[int, str]]:
        """(seq, key) of every record object under the prefix, in seq order (zero-padded keys sort numerically)."""
        for key in self.store.list(self.prefix):
            match = _KEY_NAME.match(key[len(self.prefix) :])
            if match:
                yield int(match.group(1)), key

    def _keys_checked(self, problems: list[str]) -> Iterator[tuple[int, str]]:
        """Like `_record_keys`, but report objects under the prefix that are not records."""
        for key in self.store.list(self.prefix):
            match = _KEY_NAME.match(key[len(self.prefix) :])
            if match is None or int(match.group(1)) == 0:
                problems.append(f"{key}: not an audit record key (expected {self.prefix}NNNNNNNNNNNN.json, seq >= 1)")
            else:
                yield int(match.group(1)), key

    def _check_record(
        self, seq: int, key: str, prev_hash: str | None, problems: list[str]
    ) -> tuple[AuditRecord | None, str | None]:
        """Check one record; return it (None when unreadable) and the hash of its actual bytes."""
        try:
            raw = json.loads(self.store.get(key))
        except IntegrityError as exc:
            problems.append(f"seq {seq}: altered — the store refuses its bytes ({exc})")
            return None, None
        except NotFound:
            problems.append(f"seq {seq}: deleted while the log was being verified")
            return None, None
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(f"seq {seq}: unparsable — not JSON ({exc})")
            return None, None
        if not isinstance(raw, dict):
            problems.append(f"seq {seq}: unparsable — not a JSON object")
            return None, None
        actual_hash = record_hash(raw)
        try:
            record = AuditRecord.model_validate(raw)
        except ValidationError as exc:
            problems.append(f"seq {seq}: unparsable — not a valid audit record ({_reasons(exc)})")
            return None, actual_hash
        if record.seq != seq:
            problems.append(f"seq {seq}: misplaced — the record stored under {key} says seq {record.seq}")
        if actual_hash != record.hash:
            problems.append(f"seq {seq}: modified — its content no longer matches its hash")
        if prev_hash is not None and record.prev != prev_hash:
            before = "64 zeros (it is the first record)" if seq == 1 else f"the hash of seq {seq - 1}"
            problems.append(
                f"seq {seq}: broken link — prev is not {before}: a record was rewritten, inserted, removed or moved"
            )
        return record, actual_hash

    def _read(self, key: str) -> AuditRecord:
        try:
            return AuditRecord.model_validate_json(self.store.get(key))
        except ValidationError as exc:
            raise IntegrityError(
                f"audit record {key} in {self.store.describe()} is unreadable ({exc.error_count()} problems); "
                "run `cairn audit verify` to see what was tampered with",
                key=key,
            ) from exc

    def _head_from_listing(self) -> AuditHead:
        last = None
        for seq, key in self._record_keys():
            last = seq, key
        return EMPTY_HEAD if last is None else AuditHead(last[0], self._read(last[1]).hash)

    def _head_after(self, head: AuditHead) -> AuditHead:
        """Read forward from *head* to the newest record (cheaper than listing: usually one or two reads)."""
        while True:
            try:
                head = AuditHead(head.seq + 1, self._read(self._key(head.seq + 1)).hash)
            except NotFound:
                return head
