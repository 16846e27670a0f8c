"""A full disk under CAIRN_HOME: a clear error that names the disk, nothing corrupted, and work goes on once space
is freed.

CAIRN_HOME (SQLite catalog, Milvus Lite, the local vault) lives on a small tmpfs mounted for the test, so the disk
really fills: a ballast file takes all but a little of it, an ingest of a larger document then meets ENOSPC.
Mounting needs root (CAP_SYS_ADMIN); these machines run tests as root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn import Cairn, Settings
from cairn.errors import DiskFull

pytestmark = pytest.mark.integration

DISK_MB = 64


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of DISK_MB MiB at a fresh directory, unmounted afterwards (also when the test fails)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem for the full-disk test needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m,mode=0700", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(disk: Path, leave_bytes: int) -> Path:
    """A ballast file that leaves about *leave_bytes* free on *disk*."""
    ballast = disk / "ballast"
    free = shutil.disk_usage(disk).free
    with ballast.open("wb") as out:
        out.truncate(0)
        remaining = max(0, free - leave_bytes)
        block = b"\0" * (1024 * 1024)
        while remaining > 0:
            out.write(block[: min(len(block), remaining)])
            remaining -= min(len(block), remaining)
    return ballast


def test_a_full_disk_under_cairn_home_is_a_clear_error_and_nothing_is_corrupted(
    small_disk: Path, tmp_path: Path, embedder
) -> None:  # type: ignore[no-untyped-def]
    """With the disk full, the ingest of a new document reports it failed with an error that names the full disk
    and says what to do; the document ingested before stays intact and searchable and `verify` is clean; once
    space is freed, the same ingest succeeds and both documents are present once, with verify clean."""
    home = small_disk / "home"
    cairn = Cairn(Settings(home=home))
    cairn._embedder = embedder
    docs, big = tmp_path / "docs", tmp_path / "big"
    docs.mkdir()
    big.mkdir()
    (docs / "leave.md").write_text("# Leave\n\nEmployees get 25 days of annual leave.\n")
    # Larger than the space left, and quick to chunk: one long section of short sentences.
    sentences = " ".join(f"Pump {n} is checked every {n % 24 + 1} hours." for n in range(1500))
    (big / "manual.md").write_text("# Pump manual\n\n" + sentences + "\n")
    try:
        assert cairn.ingest([docs]).ingested == 1
        ballast = _fill(small_disk, leave_bytes=16 * 1024)
        report = cairn.ingest([big])
        assert (report.ingested, [Path(f.path).name for f in report.failed]) == (0, ["manual.md"])
        error = report.failed[0].error
        assert "is full" in error, error
        assert str(home) in error, error
        assert "free space" in error, error
        with pytest.raises(DiskFull, match="is full"):  # the vault's own error, for callers of the store
            cairn.vault.store.put("probe/too-big", b"x" * 256 * 1024)

        ballast.unlink()  # space freed: nothing needs repair
        assert cairn.verify().clean
        assert [Path(d.source).name for d in cairn.documents()] == ["leave.md"]
        assert "leave.md" in cairn.search("annual leave days", mode="dense").hits[0].source
        again = cairn.ingest([big])
        assert (again.ingested, again.failed) == (1, [])
        assert sorted(Path(d.source).name for d in cairn.documents()) == ["leave.md", "manual.md"]
        assert cairn.verify().clean
    finally:
        cairn.close()
