"""What the connected Milvus can do, detected once per connection instead of assumed.

BM25 (a sparse-vector function) and hybrid search arrived in Milvus 2.5; Milvus Lite 2.5 has them,
a 2.3 or 2.4 server does not. Aliases and partition keys are server features (Milvus Lite 2.5 has no
aliases). Where a feature is missing cairn degrades in one documented way and says so once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["EngineFeatures", "detect_features"]

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class EngineFeatures:
    """The engine's kind and version and which optional features cairn uses on it."""

    engine: str  # "milvus-lite" or "milvus-server"
    version: str
    bm25: bool  # native full-text BM25, and so keyword and hybrid search
    aliases: bool  # collection aliases (zero-downtime switch on reindex)
    partition_key: bool  # tenant as the partition key
    consistency_per_read: bool  # a consistency level chosen per search
    # Whether an upsert keeps a row in its partition-key partition. Milvus before 2.4 put upserted rows
    # in the wrong partition (milvus-io/milvus#30607): tenant-filtered searches then never found them.
    upsert_keeps_partition: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def active(self) -> list[str]:
        """The names of the optional features in use, for `cairn collections info`."""
        names = {
            "bm25": self.bm25,
            "hybrid": self.bm25,
            "aliases": self.aliases,
            "partition_key": self.partition_key,
            "consistency_per_read": self.consistency_per_read,
        }
        return [name for name, on in names.items() if on]

    @property
    def fallback_warning(self) -> str | None:
        if self.bm25:
            return None
        return (
            f"the Milvus server ({self.version}) has no BM25 full-text search (Milvus 2.5 or later has): "
            "keyword and hybrid searches run as dense (vector) searches"
        )


def parse_version(text: str) -> tuple[int, int, int]:
    """(major, minor, patch) of a Milvus version string such as ``v2.3.5-lite`` or ``2.5.4``; (0, 0, 0) if unknown."""
    match = _VERSION.search(text or "")
    if not match:
        return (0, 0, 0)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def detect_features(engine: str, version: str) -> EngineFeatures:
    """The features cairn uses on ``engine`` at ``version`` (from ``get_server_version``)."""
    parsed = parse_version(version)
    if engine == "milvus-lite":
        # Milvus Lite 2.5 has BM25 and hybrid search but no aliases; it is always strongly consistent.
        return EngineFeatures(
            engine, version, bm25=True, aliases=False, partition_key=False, consistency_per_read=False
        )
    return EngineFeatures(
        engine,
        version,
        bm25=parsed >= (2, 5, 0),
        aliases=True,
        partition_key=parsed >= (2, 2, 9),
        consistency_per_read=True,
        upsert_keeps_partition=parsed >= (2, 4, 0),
    )
