"""Shared fixtures: the real packaged embedding model, loaded once per test session."""

from __future__ import annotations

import os

import pytest
from tests.pg_fixtures import fresh_postgres_url, postgres_server, postgres_url  # noqa: F401  (a real PostgreSQL)
from tests.s3_fixtures import seaweed, seaweed_bucket  # noqa: F401  (a real S3 server, for S3 tests)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The packaged all-MiniLM-L6-v2 (real model, CPU)."""
    from cairn.embed.local import load_embedder

    return load_embedder("all-MiniLM-L6-v2")


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test reads the developer's CAIRN_* environment or a cairn.toml in the working directory."""
    for name in list(os.environ):
        if name.startswith("CAIRN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CAIRN_CONFIG", str(tmp_path_factory.getbasetemp() / "no-cairn.toml"))
