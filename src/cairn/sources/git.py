"""A Git repository as a source: the files at a branch or tag, with the commit in each version's metadata.

The URI is ``git+`` and where the repository is: ``git+/srv/repos/handbook`` (a local clone or
bare repository, read in place) or ``git+https://host/handbook.git`` (mirrored under
``CAIRN_HOME/sources/NAME.git`` and fetched at the start of every sync). ``settings["ref"]`` names
the branch or tag (default ``HEAD``).

A listing is one ``git ls-tree`` of the ref's commit: each file's key is its path, its ETag the
blob id, so a file unchanged between two commits costs nothing but its listing line. A document's
identity is ``REPO@PATH`` (``handbook@guide/install.md``); its metadata holds ``git_commit``,
``git_ref``, ``git_author`` (of the last commit that changed the file) and ``source_key``.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from cairn.catalog import SourceRecord
from cairn.errors import SourceError
from cairn.sources.kinds import Fetched, ListedObject

__all__ = ["GitReader"]

_TIMEOUT_S = 600
_BLOCK = 1024 * 1024


class GitReader:
    """Lists the files of one commit of a repository and reads their blobs."""

    def __init__(self, source: SourceRecord, *, home: Path | None = None) -> None:
        self.name = source.name
        self.location = source.uri.removeprefix("git+")
        self.ref = str(source.settings.get("ref") or "HEAD")
        self.remote = "://" in self.location or self.location.startswith("git@")
        if self.remote:
            base = home if home is not None else Path(str(source.settings.get("mirror_root") or "."))
            self.repository = base / f"{source.name}.git"
        else:
            self.repository = Path(self.location).expanduser().absolute()
        self.repo_name = Path(self.location.rstrip("/")).name.removesuffix(".git") or source.name
        self.commit = ""
        self.requests = 0

    def _git(self, *args: str) -> str:
        self.requests += 1
        try:
            done = subprocess.run(
                ["git", "-C", str(self.repository), *args],
                capture_output=True,
                check=True,
                timeout=_TIMEOUT_S,
            )
        except subprocess.CalledProcessError as exc:
            reason = exc.stderr.decode(errors="replace").strip().splitlines()
            raise SourceError(
                f"source {self.name!r}: git {args[0]} failed ({reason[-1] if reason else exc.returncode}); "
                "nothing was removed",
                source=self.name,
            ) from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SourceError(f"source {self.name!r}: git {args[0]} failed ({exc}); nothing was removed") from exc
        return done.stdout.decode(errors="surrogateescape")

    def _mirror(self) -> None:
        if not (self.repository / "HEAD").exists():
            self.repository.parent.mkdir(parents=True, exist_ok=True)
            self.requests += 1
            try:
                subprocess.run(
                    ["git", "clone", "--mirror", "--quiet", self.location, str(self.repository)],
                    capture_output=True,
                    check=True,
                    timeout=_TIMEOUT_S,
                )
            except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired) as exc:
                raise SourceError(
                    f"source {self.name!r}: cannot clone {self.location}; check the URL and this machine's access "
                    "to it; nothing was removed",
                    source=self.name,
                ) from exc
        else:
            self._git("fetch", "--prune", "--quiet", "origin")

    def listing(self) -> Iterator[ListedObject]:
        if self.remote:
            self._mirror()
        self.commit = self._git("rev-parse", "--verify", f"{self.ref}^{{commit}}").strip()
        tree = self._git("ls-tree", "-r", "-l", "-z", self.commit)
        for line in tree.split("\0"):
            if not line:
                continue
            meta, _, path = line.partition("\t")
            mode, kind, blob, size = meta.split()
            if kind != "blob" or mode == "120000":  # submodules and symbolic links are not files here
                continue
            if any(part.startswith(".") for part in path.split("/")):
                continue
            yield ListedObject(key=path, size=int(size), etag=blob)

    def identity(self, key: str) -> str:
        return f"{self.repo_name}@{key}"

    def fetch(self, listed: ListedObject, folder: Path) -> Fetched:
        """The blob streamed to a file in *folder*, with the commit and author in its metadata."""
        target = folder / hashlib.sha256(listed.key.encode()).hexdigest()[:32]
        digest = hashlib.sha256()
        self.requests += 1
        with target.open("wb") as out:
            process = subprocess.Popen(
                ["git", "-C", str(self.repository), "cat-file", "blob", str(listed.etag)], stdout=subprocess.PIPE
            )
            assert process.stdout is not None
            while block := process.stdout.read(_BLOCK):
                digest.update(block)
                out.write(block)
            if process.wait(timeout=_TIMEOUT_S) != 0:
                raise SourceError(f"source {self.name!r}: cannot read {listed.key} at {self.commit[:12]}")
        author = self._git("log", "-1", "--format=%an <%ae>", self.commit, "--", listed.key).strip()
        metadata = {
            "source_name": self.name,
            "source_key": listed.key,
            "git_commit": self.commit,
            "git_ref": self.ref,
            "git_author": author,
        }
        return Fetched(target, digest.hexdigest(), metadata)
