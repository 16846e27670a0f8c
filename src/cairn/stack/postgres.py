"""A real PostgreSQL server on loopback, started from the distribution's binaries, for tests and `cairn stack`.

``PostgresServer(root)`` keeps the cluster in ``root/data``, the server's log in ``root/postgres.log``, and the
generated passwords and last port in ``root/state.json`` (mode 0600); a later ``start()`` on the same root reuses
all three, so the data and the URL survive a restart. The server listens on 127.0.0.1 only, with its unix socket
in the data directory (not /tmp), and asks every client for a password (scram-sha-256, over TCP and the socket):
the superuser ``postgres`` and the application role ``cairn``, owner of the database ``cairn``, get random ones.

PostgreSQL refuses to run as root. Started by root, initdb and the server run as the ``postgres`` system account
(made by the Debian package; else ``nobody``) through ``setpriv``, and the data directory belongs to that account.
Where the account may not pass through a directory above the data directory (root's home and pytest's
``/tmp/pytest-of-root`` are mode 0700), they run in a private mount namespace in which the data directory is
bind-mounted at ``/run/cairn-postgres-<hash>``, which the account can reach. (Running the server as root inside a
user namespace would need no bind mount, but the server would then own every root-owned file of the host.)
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from cairn._lifeline import owned_command, popen_on_lifeline_thread
from cairn.errors import CairnError
from cairn.stack.milvus import process_alive, stop_process_group
from cairn.stack.seaweed import held_loopback_ports, loopback_ports_free

__all__ = ["PostgresError", "PostgresNotInstalledError", "PostgresServer", "PostgresStartError", "find_binaries"]

LOOPBACK = "127.0.0.1"
SUPERUSER = "postgres"
APP_ROLE = "cairn"
APP_DATABASE = "cairn"
_DEBIAN_BINARIES = Path("/usr/lib/postgresql")
_SERVICE_ACCOUNTS = ("postgres", "nobody")
_BIND_MOUNT = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
_SOCKET_PATH_LIMIT = 107  # sockaddr_un.sun_path holds 108 bytes, the last one a NUL


class PostgresError(CairnError):
    """PostgreSQL could not be found, started, reached or stopped."""


class PostgresNotInstalledError(PostgresError):
    """No `postgres` and `initdb` binaries on PATH nor under /usr/lib/postgresql."""


class PostgresStartError(PostgresError):
    """initdb failed, or the server exited or refused connections until the timeout; the message has its log tail."""


@dataclass
class _State:
    superuser_password: str
    app_password: str
    port: int | None = None


def find_binaries() -> Path:
    """The directory with `postgres` and `initdb`: that of `postgres` on PATH, else Debian's newest version."""
    candidates = [Path(found).resolve().parent] if (found := shutil.which("postgres")) else []
    candidates += sorted(_DEBIAN_BINARIES.glob("*/bin"), key=_version_of, reverse=True)
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in ("postgres", "initdb")):
            return directory
    raise PostgresNotInstalledError(
        f"no PostgreSQL server (`postgres` and `initdb`) on PATH or under {_DEBIAN_BINARIES}/*/bin; install the "
        "Debian package `postgresql` (`make system-packages`)"
    )


class PostgresServer:
    """One PostgreSQL cluster under ``root``, served on 127.0.0.1; start() / stop() or a `with` block."""

    def __init__(
        self,
        root: Path,
        *,
        port: int | None = None,
        startup_timeout: float = 60.0,
        bindir: Path | None = None,
        launcher: list[str] | None = None,
        outlive_owner: bool = False,
    ) -> None:
        if startup_timeout <= 0:
            raise ValueError(f"startup_timeout must be positive, got {startup_timeout!r}")
        self.root = root.absolute()
        self.data_dir = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.state_path = self.root / "state.json"
        self.startup_timeout = startup_timeout
        self._bindir = bindir
        self._launcher = list(launcher or [])  # a command prefix: `cairn stack` enters its network namespace
        self._outlive_owner = outlive_owner  # `cairn stack up`; otherwise the server ends with this process
        self._state = self._load_state()
        self._fixed_port = port is not None
        self.port = port or (self._state.port if self._state else None)
        self.pid: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: BinaryIO | None = None
        self._account = _service_account()

    def __repr__(self) -> str:
        where = f"pid {self.pid} on {LOOPBACK}:{self.port}" if self.pid else "stopped"
        return f"<PostgresServer {where} root={str(self.root)!r} passwords=<redacted>>"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the application database, as the application role."""
        return self.database_url(APP_DATABASE)

    def database_url(self, database: str) -> str:
        password = quote(self._require_state().app_password, safe="")
        return f"postgresql+psycopg://{APP_ROLE}:{password}@{LOOPBACK}:{self.port}/{quote(database, safe='')}"

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """initdb (the first time), start the server, and create the application role and database if missing.

        Returns once the superuser can log in over TCP; raises PostgresStartError with the log tail otherwise.
        """
        if self._process is not None:
            raise PostgresError(f"{self!r} was already started")
        bindir = self._bindir or find_binaries()
        self._refuse_if_running_elsewhere()
        self.root.mkdir(parents=True, exist_ok=True)
        self._state = self._state or _State(secrets.token_urlsafe(24), secrets.token_urlsafe(24))
        if not self._fixed_port and not (self.port and loopback_ports_free([self.port])):
            with held_loopback_ports(1) as (free,):
                self.port = free
        self._state.port = self.port
        self._save_state(self._state)  # before initdb: the superuser's password must outlive a crash
        atexit.register(self.stop)  # a script that forgets stop() still leaves no server behind
        try:
            self._prepare_data_dir()
            self._log_file = self.log_path.open("ab")
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb(bindir / "initdb", self._state.superuser_password)
            server = [str(bindir / "postgres"), *self._server_options()]
            if not self._outlive_owner:  # SIGINT: PostgreSQL's fast shutdown; innermost, after the change of account
                server = owned_command(server, signal.SIGINT)
            self._process = popen_on_lifeline_thread(
                [*self._launcher, *self._as_account(server)],
                env=_server_environment(),
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.pid = self._process.pid
            self._wait_until_ready()
            self._create_app_database()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown; after ``timeout``, SIGKILL the server and its backends. Safe to call when stopped."""
        atexit.unregister(self.stop)
        pid, self.pid = self.pid, None
        if pid is not None:
            _shut_down(pid, timeout)
            if self._account is not None:
                with contextlib.suppress(OSError):  # none when the account could reach the data directory
                    self._view_dir.rmdir()
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=1)
        self.detach()

    def detach(self) -> None:
        """Leave the server running after this process exits (`cairn stack up`); stop it later by its pid.

        Only a server made with ``outlive_owner=True`` survives its owner; any other ends with it (cairn._lifeline).
        """
        atexit.unregister(self.stop)
        self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    # -- databases ---------------------------------------------------------------------------------------------

    def connect_as_superuser(self, database: str = "postgres", timeout: int = 5) -> psycopg.Connection[TupleRow]:
        """An autocommit connection as the superuser, over TCP: for administration and tests."""
        state = self._require_state()
        return psycopg.connect(
            host=LOOPBACK,
            port=self.port,
            user=SUPERUSER,
            password=state.superuser_password,
            dbname=database,
            connect_timeout=timeout,
            autocommit=True,
        )

    def create_database(self, name: str) -> str:
        """Create an empty database owned by the application role; return its URL."""
        with self.connect_as_superuser() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(APP_ROLE)))
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, closing the connections still open to it."""
        with self.connect_as_superuser() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's log (initdb's output too), for error messages."""
        try:
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as error:
            return f"(no server log: {error})"
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"

    # -- internals ---------------------------------------------------------------------------------------------

    @property
    def _view_dir(self) -> Path:
        """Where the data directory is bind-mounted when the service account cannot reach it (root only)."""
        return Path("/run") / f"cairn-postgres-{hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]}"

    @property
    def _server_data_dir(self) -> Path:
        """The data directory as the server sees it."""
        if self._account is not None and not _can_pass(self.root, self._account):
            return self._view_dir
        return self.data_dir

    def _prepare_data_dir(self) -> None:
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if self._account is not None:
            os.chown(self.data_dir, self._account.pw_uid, self._account.pw_gid)
        if self._server_data_dir != self.data_dir:
            self._view_dir.mkdir(mode=0o755, exist_ok=True)
        socket_path = f"{self._server_data_dir}/.s.PGSQL.{self.port}"
        if len(socket_path) > _SOCKET_PATH_LIMIT:
            raise PostgresStartError(
                f"the unix socket path {socket_path} is longer than {_SOCKET_PATH_LIMIT} bytes: use a shorter root"
            )

    def _as_account(self, command: list[str]) -> list[str]:
        """``command`` as the service account when we are root (see the module docstring); else unchanged."""
        if self._account is None:
            return command
        uid, gid = self._account.pw_uid, self._account.pw_gid
        as_account = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *command]
        if self._server_data_dir == self.data_dir:
            return as_account
        mount = ["unshare", "--mount", "--propagation=private", "--", "sh", "-c", _BIND_MOUNT, "sh"]
        return [*mount, str(self.data_dir), str(self._view_dir), *as_account]

    def _initdb(self, initdb: Path, superuser_password: str) -> None:
        # A file the account can read: initdb takes the password from a file or a terminal only.
        fd, password_file = tempfile.mkstemp(prefix="cairn-pg-")
        try:
            os.write(fd, superuser_password.encode() + b"\n")
            if self._account is not None:
                os.fchown(fd, self._account.pw_uid, self._account.pw_gid)
            os.close(fd)
            command = [str(initdb), "-D", str(self._server_data_dir), "-U", SUPERUSER, f"--pwfile={password_file}"]
            command += ["--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--encoding=UTF8", "--locale=C"]
            command.append("--no-instructions")
            done = subprocess.run(
                self._as_account(command),
                env=_server_environment(),
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                timeout=self.startup_timeout,
                check=False,
            )
        finally:
            os.unlink(password_file)
        if done.returncode != 0:
            raise PostgresStartError(f"initdb {self.data_dir} failed with code {done.returncode}\n{self.log_tail()}")

    def _server_options(self) -> list[str]:
        data_dir = self._server_data_dir
        options = {"listen_addresses": LOOPBACK, "port": self.port, "unix_socket_directories": data_dir}
        return ["-D", str(data_dir), *(f"--{name}={value}" for name, value in options.items())]

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise PostgresStartError(f"postgres exited with code {code} during startup\n{self.log_tail()}")
            try:
                with self.connect_as_superuser(timeout=2):
                    return
            except psycopg.OperationalError as error:
                last_error = error
            time.sleep(0.1)
        raise PostgresStartError(
            f"postgres on {LOOPBACK}:{self.port} did not let the superuser in within {self.startup_timeout:.0f} s "
            f"(last error: {last_error})\n{self.log_tail()}"
        )

    def _create_app_database(self) -> None:
        role, database = sql.Identifier(APP_ROLE), sql.Identifier(APP_DATABASE)
        with self.connect_as_superuser() as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone() is None:
                password = sql.Literal(self._require_state().app_password)
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, password))
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (APP_DATABASE,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role))

    def _refuse_if_running_elsewhere(self) -> None:
        # Before anything is touched: a failed start would otherwise remove the other server's mount point.
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            if process_alive(pid):
                raise PostgresStartError(f"a server already runs on {self.data_dir} (pid {pid}); stop it first")

    def _load_state(self) -> _State | None:
        try:
            return _State(**json.loads(self.state_path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise PostgresError(f"{self.state_path} is damaged ({exc}); delete {self.root} to start afresh") from exc

    def _save_state(self, state: _State) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            json.dump(asdict(state), out)
        tmp.replace(self.state_path)

    def _require_state(self) -> _State:
        if self._state is None or self.port is None:
            raise PostgresError(f"no PostgreSQL server was ever started under {self.root}; call start() first")
        return self._state


def _version_of(bindir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in bindir.parent.name.split(".") if part.isdigit())


def _service_account() -> pwd.struct_passwd | None:
    """The account the server runs as when we are root; None otherwise (it runs as us)."""
    if os.geteuid() != 0:
        return None
    for name in _SERVICE_ACCOUNTS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresError(f"PostgreSQL refuses to run as root, and there is no {' or '.join(_SERVICE_ACCOUNTS)} account")


def _can_pass(directory: Path, account: pwd.struct_passwd) -> bool:
    """Whether ``account``, without supplementary groups, may pass through ``directory`` and all those above it."""
    for path in (directory, *directory.parents):
        info = path.stat()
        owner, group = info.st_uid == account.pw_uid, info.st_gid == account.pw_gid
        if not info.st_mode & (0o100 if owner else 0o010 if group else 0o001):
            return False
    return True


def _server_environment() -> dict[str, str]:
    # PGDATA, PGPORT and friends would quietly change what initdb and the server do.
    return {**{name: value for name, value in os.environ.items() if not name.startswith("PG")}, "LC_ALL": "C"}


def _shut_down(pid: int, timeout: float) -> None:
    """SIGINT (a fast shutdown); after ``timeout``, SIGKILL the postmaster's process group. Its backends, each in a
    session of its own, exit by themselves once the postmaster is gone (Linux signals them its death)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process_alive(pid):
        time.sleep(0.05)
    if process_alive(pid):
        stop_process_group(pid, 0)
