"""A Milvus standalone server (PyPI ``milvus``, the 2.3 C++/Go server) on loopback, persisting to S3.

The wheel carries the server binaries (xz-compressed) and a configuration template. ``MilvusStandalone``
renders that template with:

- ``common.storageType: minio`` aimed at an S3 bucket (SeaweedFS in the local stack), so segments, indexes
  and logs live in object storage; only etcd metadata and the message queue stay on local disk;
- every component advertising 127.0.0.1, and the embedded etcd listening on 127.0.0.1 only (through its
  own configuration file);
- authorization on, so the proxy refuses requests without credentials, and optionally TLS on the proxy;
- a short graceful stop, so a restart takes seconds rather than minutes.

Milvus 2.3 has no setting for the address its gRPC servers listen on: the proxy and the internal component
ports listen on every interface (advertising loopback), and the internal ports take no credentials. So
`cairn stack` starts it inside a network namespace of its own (``launcher``, see cairn.stack.netns), where
"every interface" is the namespace's loopback, and forwards only the proxy and the health port to the host.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cairn._lifeline import owned_command, popen_on_lifeline_thread
from cairn.stack.seaweed import held_loopback_ports, loopback_ports_free

__all__ = ["MilvusPorts", "MilvusStandalone", "MilvusStartError", "S3Target"]

LOOPBACK = "127.0.0.1"
_COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexCoord", "indexNode", "dataCoord", "dataNode")
_TEMPLATE_PORTS = (
    "etcd_port",
    "root_coord_port",
    "proxy_port",
    "proxy_internal_port",
    "query_coord_port",
    "query_node_port",
    "index_coord_port",
    "index_node_port",
    "data_coord_port",
    "data_node_port",
)


class MilvusStartError(RuntimeError):
    """The Milvus server exited or did not become healthy in time; the message carries its log tail."""


@dataclass(frozen=True)
class S3Target:
    """Where Milvus keeps its data: an S3 endpoint on loopback and a bucket."""

    host: str
    port: int
    access_key: str
    secret_key: str
    bucket: str
    root_path: str = "milvus"


@dataclass
class MilvusPorts:
    """The loopback ports of one server: the template's component ports plus etcd's peer and the metrics port."""

    ports: dict[str, int]

    @classmethod
    def free(cls) -> MilvusPorts:
        names = (*_TEMPLATE_PORTS, "etcd_peer_port", "metrics_port")
        with held_loopback_ports(len(names)) as ports:
            return cls(dict(zip(names, ports, strict=True)))

    def all_free(self) -> bool:
        return loopback_ports_free(self.ports.values())

    @property
    def proxy(self) -> int:
        return self.ports["proxy_port"]

    @property
    def metrics(self) -> int:
        return self.ports["metrics_port"]


class MilvusStandalone:
    """One Milvus standalone process with its data under ``root``; ``start()``, ``stop()``, ``restart()``."""

    def __init__(
        self,
        root: Path,
        s3: S3Target,
        ports: MilvusPorts,
        *,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        startup_timeout: float = 120.0,
        launcher: list[str] | None = None,
        outlive_owner: bool = False,
    ) -> None:
        self.root = root
        self.s3 = s3
        self.ports = ports
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.startup_timeout = startup_timeout
        self.launcher = list(launcher or [])  # a command prefix, e.g. one entering the stack's network namespace
        self.outlive_owner = outlive_owner  # `cairn stack up`; otherwise the server ends with this process
        self.pid: int | None = None
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{LOOPBACK}:{self.ports.proxy}"

    @property
    def log_path(self) -> Path:
        return self.root / "logs" / "milvus.log"

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> MilvusStandalone:
        """Render the configuration, unpack the binaries (once) and start; return when /healthz says OK."""
        import milvus  # the PyPI `milvus` wheel: binaries and the configuration template

        began = time.monotonic()
        for sub in ("configs", "logs", "data", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        milvus._initialize_data_files(str(self.root))  # unpacks bin/ once, checked by checksum
        self._write_config(milvus)
        env = dict(os.environ)
        env.update(
            DEPLOY_MODE="STANDALONE",
            METRICS_PORT=str(self.ports.metrics),
            MILVUS_RUN_DIR=str(self.root / "run"),
            LD_LIBRARY_PATH=":".join(filter(None, [str(self.root / "bin"), os.environ.get("LD_LIBRARY_PATH")])),
        )
        # The server reads configs/milvus.yaml relative to its working directory.
        with self.log_path.open("ab") as log:
            server = [str(self.root / "bin" / "milvus"), "run", "standalone"]
            self._process = popen_on_lifeline_thread(
                [*self.launcher, *(server if self.outlive_owner else owned_command(server))],
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self._process.pid
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the server's process group, SIGKILL after ``timeout``. Safe to call when stopped."""
        if self.pid is not None:
            stop_process_group(self.pid, timeout)
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=1)
        self._process = None
        self.pid = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def detach(self) -> None:
        """Leave the server running after this process exits (`cairn stack up`).

        Only a server made with ``outlive_owner=True`` survives its owner; any other ends with it (cairn._lifeline).
        """
        self._process = None

    @property
    def running(self) -> bool:
        return self.pid is not None and process_alive(self.pid)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{self.ports.metrics}/healthz", timeout=2) as resp:
                return b"OK" in resp.read()
        except (OSError, urllib.error.URLError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as error:
            return f"(no server log: {error})"
        return "\n".join(text.splitlines()[-lines:])

    # -- internals ---------------------------------------------------------------------------------------------
    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise MilvusStartError(
                    f"milvus exited with code {self._process.returncode} during startup\n{self.log_tail()}"
                )
            if self.healthy():
                return
            time.sleep(0.2)
        raise MilvusStartError(f"milvus was not healthy within {self.startup_timeout:.0f} s\n{self.log_tail()}")

    def _write_config(self, milvus: object) -> None:
        config = milvus.MilvusServerConfig(data_dir=str(self.root))  # type: ignore[attr-defined]
        config.resolve_storage()  # log and data paths under root
        for name in _TEMPLATE_PORTS:
            config.set(name, self.ports.ports[name])
        etcd_config = self.root / "configs" / "etcd.yaml"
        etcd_config.write_text(self._etcd_config())
        overrides: dict[str, object] = {
            "etcd.endpoints": f"{LOOPBACK}:{self.ports.ports['etcd_port']}",
            "common.storageType": "minio",
            "common.gracefulStopTimeout": 10,
            "common.security.authorizationEnabled": "true",
            "minio.address": self.s3.host,
            "minio.port": self.s3.port,
            "minio.accessKeyID": self.s3.access_key,
            "minio.secretAccessKey": self.s3.secret_key,
            "minio.bucketName": self.s3.bucket,
            "minio.rootPath": self.s3.root_path,
            "minio.useSSL": "false",
        }
        overrides.update({f"{component}.ip": LOOPBACK for component in _COMPONENTS})
        if self.tls_cert and self.tls_key:
            overrides.update(
                {
                    "common.security.tlsMode": 1,
                    "tls.serverPemPath": str(self.tls_cert),
                    "tls.serverKeyPath": str(self.tls_key),
                }
            )
        for key, value in overrides.items():
            config.set(key, value)
        config.write_config()
        # The template has no `etcd.config` section, and the renderer only replaces keys it has: add it.
        rendered = self.root / "configs" / "milvus.yaml"
        text = rendered.read_text()
        if "\netcd:\n" not in text:
            raise MilvusStartError(f"the milvus configuration template has no etcd section: {rendered}")
        text = text.replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd_config}\n", 1)
        rendered.write_text(text)

    def _etcd_config(self) -> str:
        client = f"http://{LOOPBACK}:{self.ports.ports['etcd_port']}"
        peer = f"http://{LOOPBACK}:{self.ports.ports['etcd_peer_port']}"
        return (
            "name: cairn-stack\n"
            f"data-dir: {self.root / 'data' / 'etcd.data'}\n"
            f"listen-client-urls: {client}\n"
            f"advertise-client-urls: {client}\n"
            f"listen-peer-urls: {peer}\n"
            f"initial-advertise-peer-urls: {peer}\n"
            f"initial-cluster: cairn-stack={peer}\n"
        )


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child counts as gone.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def stop_process_group(pid: int, timeout: float) -> None:
    """SIGTERM the process group led by ``pid``; SIGKILL it if still alive after ``timeout`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process_alive(pid):
        time.sleep(0.1)
    if process_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        while process_alive(pid):
            time.sleep(0.05)
