"""A Ray ingest and a `cairn ingest` process writing one collection at once, on the stack (PostgreSQL catalog)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from tests.server.stack_helpers import server_settings, unique

from cairn import Cairn
from cairn.ray_engine import RayEngine
from cairn.stack import LocalStack

REAL = Path(__file__).parent.parent / "fixtures" / "real"
CAIRN = str(Path(sys.executable).parent / "cairn")


def test_a_ray_run_and_a_cli_ingest_into_one_collection_at_once(
    stack: tuple[LocalStack, dict[str, str]],
    stack_env: dict[str, str],
    tmp_path: Path,
    embedder,  # type: ignore[no-untyped-def]
) -> None:
    """Both share 10 of their files: every document ends up present once, with one version; verify is clean."""
    _, exports = stack
    store = f"s3://cairn/ray-{uuid.uuid4().hex[:8]}"
    collection = unique("ray")
    shared, ours, theirs = tmp_path / "shared", tmp_path / "ours", tmp_path / "theirs"
    for folder in (shared, ours, theirs):
        folder.mkdir()
    texts = sorted((REAL / "docs").glob("*.txt")) + sorted((REAL / "docs").glob("*.html"))
    for path in texts:
        shutil.copy(path, shared / path.name)
    for n in range(20):
        (ours if n % 2 else theirs).joinpath(f"note-{n:02d}.md").write_text(
            f"# Note {n}\n\nShift {n} logged pump {n} at {n * 3} bar and valve {n * 7} closed.\n"
        )
    env = {
        **exports,
        "CAIRN_HOME": str(tmp_path / "cli-home"),
        "CAIRN_STORE": store,
        "CAIRN_S3_ADDRESSING_STYLE": "path",
        "CAIRN_INGEST_BATCH_CHUNKS": "8",
        "HF_HUB_OFFLINE": "1",
    }
    cairn = Cairn(server_settings(exports, tmp_path / "home", store=store, ingest_batch_chunks=8, retire_grace_s=0.0))
    cairn._embedder = embedder
    engine = RayEngine()
    try:
        cli = subprocess.Popen(
            [CAIRN, "ingest", str(shared), str(theirs), "-c", collection, "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        report = cairn.ingest([shared, ours], collection=collection, engine=engine)
        _, err = cli.communicate(timeout=600)

        assert cli.returncode == 0, err[-2000:]
        assert report.failed == []
        documents = cairn.documents(collection=collection)
        names = [Path(d.source).name for d in documents]
        assert len(names) == len(set(names)) == len(texts) + 20
        assert all([v.version for v in d.versions] == [1] for d in documents)
        verified = cairn.verify(collection=collection)
        assert verified.clean, verified.issues
        assert verified.rows == sum(d.chunks for d in documents)
    finally:
        engine.close()
        cairn.close()
