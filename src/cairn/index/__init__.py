"""The Milvus index: a derived, rebuildable copy of the vault's chunks, searchable three ways."""

from cairn.index.milvus import MilvusIndex, SearchMode

__all__ = ["MilvusIndex", "SearchMode"]
