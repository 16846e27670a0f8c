"""Embedding: the `Embedder` seam, the local sentence-transformers backend and the vault cache."""

from cairn.embed.base import Embedder, Tokenizer, embed_with_cache
from cairn.embed.local import SentenceTransformerEmbedder, load_embedder

__all__ = ["Embedder", "SentenceTransformerEmbedder", "Tokenizer", "embed_with_cache", "load_embedder"]
