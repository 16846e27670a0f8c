"""What the soak's clients were told, and what every answer was allowed to show (`cairn bench soak`).

The ledger records, per uploaded document, each access change as an *epoch*: the allowed groups
(``None`` once the document is deleted), when the change was sent and when the service acknowledged
it (``None`` when the call failed, so the change may or may not have happened). One editor makes the
changes of a document one after another, so its epochs are ordered.

An answer to a request sent at ``s`` and received at ``e`` may show a document under any epoch that
could have been in force at some moment in between: one sent by ``e`` and not superseded by a later
epoch acknowledged by ``s``. So a view from before an acknowledged change is accepted only from a
request that started before the acknowledgement; anything sent after it must obey the new view.
Keys are alike: a request sent after a revocation was acknowledged must be refused.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AclEpoch", "SoakLedger", "TrackedDocument", "sees"]

EVERYONE = "*"


def sees(groups: frozenset[str], allow: frozenset[str] | None) -> bool:
    """Whether a key in *groups* may see a document allowed to *allow* (``None``: deleted)."""
    return allow is not None and (EVERYONE in allow or bool(groups & allow))


@dataclass
class AclEpoch:
    allow: frozenset[str] | None
    sent: float
    acked: float | None = None


@dataclass
class TrackedDocument:
    name: str
    epochs: list[AclEpoch]
    job_id: str | None = None
    job_state: str = "queued"
    job_error: str | None = None
    doc_id: str | None = None

    @property
    def upload_acked(self) -> bool:
        return self.epochs[0].acked is not None

    def possible(self, started: float, ended: float) -> list[AclEpoch]:
        """The epochs a request sent at *started* and answered at *ended* may have read."""
        chosen = []
        for i, epoch in enumerate(self.epochs):
            if epoch.sent > ended:
                break
            later = self.epochs[i + 1 :]
            if not any(e.acked is not None and e.acked <= started for e in later):
                chosen.append(epoch)
        return chosen

    def expected(self) -> str:
        """``present``, ``absent`` or ``unknown`` (an unacknowledged last step) once the run is over."""
        last = self.epochs[-1]
        if last.acked is None or self.job_state == "unacknowledged":
            return "unknown"
        return "absent" if last.allow is None else "present"

    def current_allow(self) -> frozenset[str] | None:
        return self.epochs[-1].allow


@dataclass
class _TrackedKey:
    groups: frozenset[str]
    revoke_sent: float | None = None
    revoke_acked: float | None = None


@dataclass
class SoakLedger:
    """Documents, keys and the violations found in answers; safe to share between client threads."""

    documents: dict[str, TrackedDocument] = field(default_factory=dict)
    keys: dict[str, _TrackedKey] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    violation_count: int = 0
    responses_checked: int = 0
    passages_checked: int = 0
    revoked_refused: int = 0
    revoked_accepted: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- what the editor did -------------------------------------------------------------------------------
    def upload_sent(self, name: str, allow: frozenset[str], sent: float) -> None:
        with self._lock:
            self.documents[name] = TrackedDocument(name, [AclEpoch(allow, sent)])

    def upload_acked(self, name: str, job_id: str, acked: float) -> None:
        with self._lock:
            document = self.documents[name]
            document.epochs[0].acked = acked
            document.job_id = job_id

    def upload_refused(self, name: str) -> None:
        with self._lock:
            self.documents[name].job_state = "unacknowledged"

    def change_sent(self, name: str, allow: frozenset[str] | None, sent: float) -> AclEpoch:
        """A new epoch for an ACL change (or, with ``None``, a deletion); acknowledge it with `acked`."""
        epoch = AclEpoch(allow, sent)
        with self._lock:
            self.documents[name].epochs.append(epoch)
        return epoch

    def acked(self, epoch: AclEpoch, when: float) -> None:
        with self._lock:
            epoch.acked = when

    def key_created(self, key_id: str, groups: frozenset[str]) -> None:
        with self._lock:
            self.keys[key_id] = _TrackedKey(groups)

    def revoke_sent(self, key_id: str, sent: float) -> None:
        with self._lock:
            self.keys[key_id].revoke_sent = sent

    def revoke_acked(self, key_id: str, when: float) -> None:
        with self._lock:
            self.keys[key_id].revoke_acked = when

    def shift(self, seconds: float) -> None:
        """Move every recorded time back by *seconds*: the clock is restarted after the seed uploads."""
        with self._lock:
            for document in self.documents.values():
                for epoch in document.epochs:
                    epoch.sent -= seconds
                    epoch.acked = None if epoch.acked is None else epoch.acked - seconds
            for key in self.keys.values():
                key.revoke_sent = None if key.revoke_sent is None else key.revoke_sent - seconds
                key.revoke_acked = None if key.revoke_acked is None else key.revoke_acked - seconds

    # -- what the readers were shown ------------------------------------------------------------------------
    def check_passages(self, key_id: str, sources: list[str], started: float, ended: float, what: str) -> None:
        """Record a violation for each passage the key could not have seen at any moment of the request."""
        with self._lock:
            key = self.keys[key_id]
            self.responses_checked += 1
            if key.revoke_acked is not None and key.revoke_acked <= started:
                self.revoked_accepted += 1
                late = ended - key.revoke_acked
                self._violation(f"{what}: revoked key {key_id} answered {late:.2f} s after its revocation")
            for source in sources:
                self.passages_checked += 1
                document = self.documents.get(source.removeprefix("upload:"))
                if document is None:
                    self._violation(f"{what}: key {key_id} was shown {source!r}, which the soak never uploaded")
                    continue
                if not any(sees(key.groups, e.allow) for e in document.possible(started, ended)):
                    views = [sorted(e.allow) if e.allow is not None else "deleted" for e in document.epochs]
                    self._violation(
                        f"{what}: key {key_id} in {sorted(key.groups)} was shown {document.name} "
                        f"(request {started:.2f}-{ended:.2f} s; its ACL history {views})"
                    )

    def check_refusal(self, key_id: str, status: int, started: float, what: str) -> None:
        """A request with a revoked key: after the acknowledgement it must be refused (401)."""
        with self._lock:
            key = self.keys[key_id]
            if key.revoke_acked is None or started < key.revoke_acked:
                return
            if status == 401:
                self.revoked_refused += 1
            elif status < 400:
                self.revoked_accepted += 1
                self._violation(f"{what}: key {key_id} was accepted ({status}) after its revocation was acknowledged")

    def _violation(self, text: str) -> None:
        self.violation_count += 1
        if len(self.violations) < 20:
            self.violations.append(text)

    def snapshot(self) -> list[TrackedDocument]:
        with self._lock:
            return list(self.documents.values())

    def summary(self) -> dict[str, Any]:
        with self._lock:
            revoked = sum(1 for k in self.keys.values() if k.revoke_acked is not None)
            return {
                "responses_checked": self.responses_checked,
                "passages_checked": self.passages_checked,
                "violations": self.violation_count,
                "violation_examples": list(self.violations),
                "keys_revoked": revoked,
                "revoked_key_requests_refused": self.revoked_refused,
                "revoked_key_requests_accepted": self.revoked_accepted,
            }
