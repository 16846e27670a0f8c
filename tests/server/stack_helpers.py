"""Helpers for the server tests: settings for a Cairn on the stack, unique collection names."""

from __future__ import annotations

import uuid
from pathlib import Path

from cairn import Settings


def server_settings(exports: dict[str, str], home: Path, **overrides: object) -> Settings:
    """Settings for a Cairn on the stack, with a vault prefix of its own so tests do not share documents."""
    values: dict[str, object] = {
        "home": home,
        "milvus_uri": exports["CAIRN_MILVUS_URI"],
        "milvus_token": exports["CAIRN_MILVUS_TOKEN"],
        "milvus_bucket": exports["CAIRN_MILVUS_BUCKET"],
        "store": f"s3://cairn/test-{uuid.uuid4().hex[:8]}",
        "s3_addressing_style": "path",
    }
    if "CAIRN_CATALOG_URL" in exports:  # the stack's PostgreSQL: one catalog for every process of a test
        values["catalog_url"] = exports["CAIRN_CATALOG_URL"]
    if "CAIRN_MILVUS_TLS_CA" in exports:
        values["milvus_tls_ca"] = exports["CAIRN_MILVUS_TLS_CA"]
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def unique(prefix: str) -> str:
    """A collection name no other test of the session uses (the Milvus server is shared)."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"
