"""The soak's clients (`cairn bench soak`): readers asking and searching, one editor, one key rotator.

Every request is timed and recorded by operation; whatever a reader is shown is checked against the
`SoakLedger` as the response arrives. Clients alternate between the replicas, so a change made through
one is read back through the other.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from cairn.bench.soak_ledger import SoakLedger

__all__ = ["DOCUMENT_ACLS", "READER_GROUPS", "TENANT", "Sample", "SoakLoad"]

TENANT = "acme"
# Who may see a document, and the groups of the readers: each reader sees some documents and not others.
DOCUMENT_ACLS = [
    frozenset({"finance"}),
    frozenset({"eng"}),
    frozenset({"board"}),
    frozenset({"finance", "eng"}),
    frozenset({"*"}),
]
READER_GROUPS = {
    "finance": frozenset({"finance"}),
    "eng": frozenset({"eng"}),
    "board-finance": frozenset({"board", "finance"}),
    "public": frozenset[str](),
}
_NOUNS = ["pump", "turbine", "valve", "boiler", "conveyor", "chiller", "compressor", "furnace", "mixer", "press"]
_PLACES = ["Leeds", "Oslo", "Porto", "Brno", "Turin", "Ghent", "Lyon", "Cork", "Riga", "Bilbao"]


@dataclass(frozen=True)
class Sample:
    """One request: which operation, when it was sent (seconds since the start), how long, and its error."""

    op: str
    started: float
    seconds: float
    error: str | None


def error_kind(response: httpx.Response) -> str:
    """``"503 index_unavailable"``: the status and the service's error code, when the body has one."""
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return str(response.status_code)
    return f"{response.status_code} {code}"


def document_text(number: int, rng: random.Random) -> str:
    noun, place = rng.choice(_NOUNS), rng.choice(_PLACES)
    return (
        f"# Soak record {number}\n\nThe {noun} crew in {place} logged reading {number} of the {noun} "
        f"on shift {number % 7}, at {rng.randint(2, 90)} bar.\n"
    )


@dataclass
class SoakLoad:
    """The load against *urls*; ``admin`` is (token, key id), ``readers`` maps a reader's name to its pair."""

    urls: list[str]
    collection: str
    admin: tuple[str, str]
    readers: dict[str, tuple[str, str]]
    ledger: SoakLedger
    t0: float
    samples: list[Sample] = field(default_factory=list)
    upload_acks: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _uploads: int = 0

    def now(self) -> float:
        return time.monotonic() - self.t0

    def clients(self) -> list[httpx.Client]:
        return [httpx.Client(base_url=url, timeout=60) for url in self.urls]

    def call(
        self, client: httpx.Client, op: str, method: str, path: str, token: str, expect: int = 200, **kwargs: Any
    ) -> tuple[httpx.Response | None, float, float]:
        """Send one request and record it; an unexpected status or a transport failure is an error of its kind."""
        started = self.now()
        try:
            response = client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        except httpx.HTTPError as exc:
            ended = self.now()
            self._record(Sample(op, started, ended - started, type(exc).__name__))
            return None, started, ended
        ended = self.now()
        error = None if response.status_code == expect else error_kind(response)
        self._record(Sample(op, started, ended - started, error))
        return response, started, ended

    def _record(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)

    # -- readers ----------------------------------------------------------------------------------------------
    def read(self, client: httpx.Client, token: str, key_id: str, rng: random.Random, ask_share: float) -> None:
        """One search or ask with the key; whatever it is shown is checked against the ACLs in force."""
        noun, place = rng.choice(_NOUNS), rng.choice(_PLACES)
        if rng.random() < ask_share:
            body = {"question": f"What did the {noun} crew in {place} log?", "collection": self.collection, "k": 4}
            response, started, ended = self.call(client, "ask", "POST", "/v1/ask", token, json=body)
            field_name = "citations"
        else:
            query = {"query": f"{noun} crew in {place}", "collection": self.collection, "k": 5, "mode": "dense"}
            response, started, ended = self.call(client, "search", "POST", "/v1/search", token, json=query)
            field_name = "hits"
        if response is not None and response.status_code == 200:
            sources = [str(item["source"]) for item in response.json()[field_name]]
            where = f"{field_name} from {client.base_url}"
            self.ledger.check_passages(key_id, sources, started, ended, where)

    def reader_loop(self, number: int, ask_share: float) -> None:
        rng = random.Random(number)
        clients = self.clients()
        names = sorted(self.readers)
        try:
            turn = number
            while not self.stop.is_set():
                token, key_id = self.readers[names[turn % len(names)]]
                self.read(clients[turn % len(clients)], token, key_id, rng, ask_share)
                turn += 1
        finally:
            for client in clients:
                client.close()

    # -- the editor: uploads, ACL changes, deletions, one after another ----------------------------------------
    def upload(self, client: httpx.Client, rng: random.Random) -> None:
        with self._lock:
            self._uploads += 1
            number = self._uploads
        name = f"soak-{number:05d}.md"
        allow = rng.choice(DOCUMENT_ACLS)
        self.ledger.upload_sent(name, allow, self.now())
        response, _, ended = self.call(
            client,
            "upload",
            "POST",
            f"/v1/collections/{self.collection}/documents",
            self.admin[0],
            expect=202,
            files=[("files", (name, document_text(number, rng).encode(), "text/markdown"))],
            data={"allow": ",".join(sorted(allow)), "tenant": TENANT},
        )
        if response is not None and response.status_code == 202:
            self.ledger.upload_acked(name, str(response.json()["job_id"]), ended)
            self.upload_acks.append(ended)
        else:
            self.ledger.upload_refused(name)

    def refresh_jobs(self, client: httpx.Client, limit: int = 20) -> int:
        """Read the state of unfinished upload jobs; learn the document ids of finished ones. Returns unfinished."""
        pending = [d for d in self.ledger.snapshot() if d.job_id and d.job_state in ("queued", "running")]
        finished = False
        for document in pending[:limit]:
            response, _, _ = self.call(client, "job_status", "GET", f"/v1/jobs/{document.job_id}", self.admin[0])
            if response is not None and response.status_code == 200:
                document.job_state = str(response.json()["state"])
                document.job_error = response.json().get("error")
                finished = finished or document.job_state == "done"
        if finished or any(d.job_state == "done" and d.doc_id is None for d in self.ledger.snapshot()):
            path = f"/v1/collections/{self.collection}/documents"
            response, _, _ = self.call(client, "list", "GET", path, self.admin[0])
            if response is not None and response.status_code == 200:
                ids = {str(d["source"]).removeprefix("upload:"): str(d["doc_id"]) for d in response.json()["documents"]}
                for document in self.ledger.snapshot():
                    document.doc_id = document.doc_id or ids.get(document.name)
        return sum(1 for d in self.ledger.snapshot() if d.job_id and d.job_state in ("queued", "running"))

    def edit(self, client: httpx.Client, rng: random.Random) -> str:
        """One editor step: an upload, an ACL change or a deletion of a live document. Returns which."""
        live = [d for d in self.ledger.snapshot() if d.doc_id and d.expected() == "present"]
        action = rng.choices(["upload", "acl", "delete"], weights=[5, 3, 2])[0]
        if action == "upload" or not live:
            self.upload(client, rng)
            return "upload"
        document = rng.choice(live)
        path = f"/v1/collections/{self.collection}/documents/{document.doc_id}"
        if action == "acl":
            allow = rng.choice([a for a in DOCUMENT_ACLS if a != document.current_allow()])
            epoch = self.ledger.change_sent(document.name, allow, self.now())
            body = {"allow": sorted(allow)}
            response, _, ended = self.call(client, "acl", "PUT", f"{path}/acl", self.admin[0], json=body)
        else:
            epoch = self.ledger.change_sent(document.name, None, self.now())
            response, _, ended = self.call(client, "delete", "DELETE", path, self.admin[0])
        if response is not None and response.status_code == 200:
            self.ledger.acked(epoch, ended)
        return action

    def editor_loop(self, interval: float, seed: int = 1) -> None:
        rng = random.Random(seed)
        clients = self.clients()
        try:
            turn = 0
            while not self.stop.wait(interval):
                client = clients[turn % len(clients)]
                self.refresh_jobs(client)
                self.edit(client, rng)
                turn += 1
        finally:
            for client in clients:
                client.close()

    # -- keys: created, used, revoked, then refused -------------------------------------------------------------
    def rotate_key(self, clients: list[httpx.Client], rng: random.Random, revoked: list[tuple[str, str]]) -> None:
        groups = rng.choice(list(READER_GROUPS.values()))
        body = {"role": "reader", "tenant": TENANT, "groups": sorted(groups)}
        response, _, _ = self.call(clients[0], "key_create", "POST", "/v1/keys", self.admin[0], expect=201, json=body)
        if response is None or response.status_code != 201:
            return
        token, key_id = str(response.json()["key"]), str(response.json()["key_id"])
        self.ledger.key_created(key_id, groups)
        for turn in range(4):
            self.read(clients[turn % len(clients)], token, key_id, rng, ask_share=0.0)
        self.ledger.revoke_sent(key_id, self.now())
        revoker = clients[1 % len(clients)]
        response, _, ended = self.call(revoker, "key_revoke", "DELETE", f"/v1/keys/{key_id}", self.admin[0])
        if response is None or response.status_code != 200:
            return
        self.ledger.revoke_acked(key_id, ended)
        revoked.append((token, key_id))
        probes = [(client, token, key_id) for client in clients]
        earlier = rng.choice(revoked)
        probes.append((rng.choice(clients), *earlier))
        for client, probe_token, probe_id in probes:
            query = {"query": "crew reading", "collection": self.collection, "k": 5}
            reply, started, _ = self.call(
                client, "revoked_probe", "POST", "/v1/search", probe_token, expect=401, json=query
            )
            if reply is not None:
                self.ledger.check_refusal(probe_id, reply.status_code, started, f"probe via {client.base_url}")

    def key_loop(self, interval: float, seed: int = 2) -> None:
        rng = random.Random(seed)
        clients = self.clients()
        revoked: list[tuple[str, str]] = []
        try:
            while not self.stop.wait(interval):
                self.rotate_key(clients, rng, revoked)
        finally:
            for client in clients:
                client.close()
