"""Milvus Lite inside CAIRN_HOME, private to this user.

pymilvus starts Milvus Lite on first connection and leaves its defaults: a Unix socket named by
``tempfile.mktemp()`` and glog logs in ``$TMPDIR``, both under /tmp and readable by anyone there,
and a database file with the umask's mode (0644). `start_lite` starts the server itself before
pymilvus connects, the way pymilvus would, but with the socket beside the database, logs and
temporary files in ``CAIRN_HOME/.milvus/`` (created 0700, logs written 0600); pymilvus then finds
the running server and uses it. `secure_lite_files` makes the database, its lock and the socket
0600 once the server has created them.

Milvus Lite (2.5) has no option for these paths, so this reaches into ``milvus_lite.server`` and
its server manager; if their shape changes, the server starts the default way and a warning says so.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cairn.errors import EngineError
from cairn.localfiles import private_dir, private_file

__all__ = ["secure_lite_files", "start_lite"]

_log = logging.getLogger(__name__)
# A Unix socket path must fit in sockaddr_un.sun_path (108 bytes with its terminating NUL).
_MAX_SOCKET_PATH = 100
_ENVIRONMENT = threading.Lock()
_SOCKETS: dict[str, Path] = {}


def start_lite(db: Path) -> None:
    """Start Milvus Lite for the database *db*, unless this process already runs it (see the module).

    The database's folder is created 0700 if it is missing; an existing one is left as it is (the
    caller decides whether it is cairn's own: `cairn.index.milvus.open_index` makes CAIRN_HOME private).
    """
    home = db.parent if db.parent.exists() else private_dir(db.parent)
    try:
        from milvus_lite.server import Server
        from milvus_lite.server_manager import server_manager_instance as manager
    except ImportError as exc:
        raise EngineError(f"Milvus Lite is not installed ({exc}); install cairn with its default extras") from exc
    servers: dict[str, Any] | None = getattr(manager, "_servers", None)
    lock: Any = getattr(manager, "_lock", None)
    if servers is None or lock is None:
        _log.warning("milvus_lite changed its server manager; Milvus Lite keeps its socket and logs in %s", "/tmp")
        return
    key = str(db.absolute().resolve())
    with lock:
        if key in servers:
            return
        server = Server(str(db))
        _SOCKETS[key] = _socket_path(home)
        server._uds_path = str(_SOCKETS[key])
        engine_dir = private_dir(home / ".milvus")
        logs, scratch = private_dir(engine_dir / "logs"), private_dir(engine_dir / "tmp")
        with _environment(GLOG_log_dir=str(logs), GLOG_logfile_mode=str(0o600), TMPDIR=str(scratch)):
            started = server.init() and server.start()
        if not started:
            raise EngineError(
                f"Milvus Lite did not start on {db}; if another cairn process is using this CAIRN_HOME, stop it "
                "or point CAIRN_HOME elsewhere (its log is in " + str(logs) + ")"
            )
        servers[key] = server
    secure_lite_files(db)


def secure_lite_files(db: Path) -> None:
    """Make the database, its lock file and the server's socket 0600 (the server creates them with the umask's mode)."""
    private_file(db)
    private_file(db.with_name(f".{db.name}.lock"))
    if socket := _SOCKETS.get(str(db.absolute().resolve())):
        private_file(socket)


def _socket_path(home: Path) -> Path:
    socket = home / ".milvus.sock"
    if len(str(socket)) <= _MAX_SOCKET_PATH:
        return socket
    # Too long a home for a socket path: a folder of its own (0700) in the temporary directory instead.
    return Path(tempfile.mkdtemp(prefix="cairn-milvus-")) / "milvus.sock"


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables while the server starts (it inherits them), then put them back."""
    with _ENVIRONMENT:
        saved = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
