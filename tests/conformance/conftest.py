"""The backend matrix every conformance suite runs on: a directory and S3 (SeaweedFS), plain and sealed.

A new vault backend is one more entry in BACKENDS.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cairn.vault import LocalDirStore, ObjectStore
from cairn.vault.envelope import EnvelopeStore, MasterKey
from cairn.vault.s3 import S3Options, S3Store

BACKENDS = ["local", "local-sealed", "s3", "s3-sealed"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """An empty store of one backend kind; S3 kinds run on the session's SeaweedFS and count as integration."""
    kind: str = request.param
    inner: ObjectStore
    if kind.startswith("s3"):
        request.applymarker(pytest.mark.integration)
        seaweed = request.getfixturevalue("seaweed")
        bucket = request.getfixturevalue("seaweed_bucket")
        url = f"s3://{bucket}/conformance/{request.node.name}"
        inner = S3Store(url, S3Options(multipart_threshold=5 * 1024 * 1024), client=seaweed.client())
    else:
        inner = LocalDirStore(tmp_path / "store")
    return EnvelopeStore(inner, MasterKey(os.urandom(32))) if kind.endswith("sealed") else inner
