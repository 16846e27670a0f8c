"""Files cairn keeps on the local disk are its user's alone: folders 0700, files 0600.

CAIRN_HOME holds every tenant's passages (the Milvus Lite database), the local vault and the
engine's logs, so nobody else on the machine may read them. Permissions are set explicitly after
each thing is created rather than through the process umask, which belongs to the whole process
(and to whatever else runs in it).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["private_dir", "private_file"]

_log = logging.getLogger(__name__)


def private_dir(path: Path) -> Path:
    """Create *path* and any missing parents as folders only this user can open (0700), and make
    *path* itself 0700 if it existed. Folders above the first existing one are left as they are."""
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)  # the umask may only take bits away: set them after
        _restrict(folder, 0o700)
    if not missing:
        _restrict(path, 0o700)
    return path


def private_file(path: Path) -> None:
    """Make an existing file (or socket) readable and writable by this user only (0600)."""
    if path.exists():
        _restrict(path, 0o600)


def _restrict(path: Path, mode: int) -> None:
    try:
        if path.stat().st_mode & 0o777 != mode:
            os.chmod(path, mode)
    except PermissionError as exc:
        # Someone else's folder (a shared mount): cairn can still work in it, but says so.
        _log.warning("cannot make %s private (mode %o): %s; other users may read it", path, mode, exc.strerror)
