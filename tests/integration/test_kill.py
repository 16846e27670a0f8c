"""Durability: kill -9 an ingest on the S3 vault at random points; after a restart and a second ingest,
every acknowledged document is searchable, nothing is duplicated, and verify reports clean."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from cairn import Cairn, Settings
from cairn.stack.seaweed import SeaweedS3

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HARNESS = Path(__file__).with_name("ack_ingest.py")
DOCUMENTS = 120


def _corpus(folder: Path) -> dict[str, str]:
    folder.mkdir()
    phrases = {}
    for n in range(DOCUMENTS):
        phrase = f"ledger entry {n * 7919 % 10007} is filed under cabinet {n}"
        (folder / f"note-{n:02d}.md").write_text(f"# Note {n}\n\nThe {phrase}.\n")
        phrases[f"{folder.name}/note-{n:02d}.md"] = phrase
    return phrases


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_acknowledged_documents_survive_kill_minus_nine(
    seed: int, seaweed: SeaweedS3, seaweed_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder
) -> None:  # type: ignore[no-untyped-def]
    """Kill the ingest process (and its Milvus Lite) at a seeded random moment after the first ack."""
    phrases = _corpus(tmp_path / "corpus")
    env = {
        **os.environ,
        "CAIRN_HOME": str(tmp_path / "home"),
        "CAIRN_STORE": f"s3://{seaweed_bucket}/vault",
        "CAIRN_S3_ADDRESSING_STYLE": "path",
        "CAIRN_INGEST_BATCH_CHUNKS": "3",
        "AWS_ENDPOINT_URL": seaweed.endpoint_url,
        "AWS_ACCESS_KEY_ID": seaweed.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
        "AWS_REGION": seaweed.region,
    }
    process = subprocess.Popen(
        [sys.executable, str(HARNESS), str(tmp_path / "corpus")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group: Milvus Lite's server process dies with it
    )
    assert process.stdout is not None
    acknowledged: list[str] = []
    first = process.stdout.readline()
    assert first.startswith("ACK "), first
    acknowledged.append(first[4:].strip())
    time.sleep(random.Random(seed).uniform(0.0, 1.0))
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    acknowledged += [line[4:].strip() for line in process.stdout.read().splitlines() if line.startswith("ACK ")]
    assert 0 < len(acknowledged) < DOCUMENTS, "the kill must land mid-ingest"
    print(f"seed {seed}: {len(acknowledged)} of {DOCUMENTS} acknowledged before the kill")

    for name, value in env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    cairn = Cairn(Settings(home=tmp_path / "home", store=env["CAIRN_STORE"], s3_addressing_style="path"))
    cairn._embedder = embedder
    try:
        before = {d.source for d in cairn.documents()}
        assert set(acknowledged) <= before, "an acknowledged document is missing after the crash"
        for source in acknowledged:
            hits = cairn.search(phrases[source], k=1, mode="keyword").hits
            assert hits[0].source == source
        report = cairn.ingest([tmp_path / "corpus"])
        assert report.failed == []
        assert report.ingested + report.unchanged == DOCUMENTS
        assert {d.source for d in cairn.documents()} == set(phrases)
        rows = cairn.index.indexed_chunks("default")
        assert max(Counter(rows.values()).values()) == 1, "a document has rows of more than one chunk set"
        assert cairn.index.count("default") == DOCUMENTS, "duplicated or missing rows"
        assert cairn.verify().clean
    finally:
        cairn.close()
