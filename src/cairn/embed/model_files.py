"""What a sentence-transformers model directory says about itself, read without loading the model.

Loading a model means importing torch, transformers and sentence-transformers: about five seconds of one
core before the first chunk can be counted. Chunking needs only the model's tokenizer and input limit, and
creating a collection only its vector width, so a process whose documents are embedded by the embedding
worker need not load the model at all. Both come from the model's own files when its layout is the plain
one (a transformer, one pooling mode, optionally normalization) and its ``tokenizer.json`` is there; for any
other layout `describe` returns None and the caller loads the model to ask it. Whatever loads the model
later checks the answer against it (`SentenceTransformerEmbedder`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = ["ModelShape", "TokenCounter", "describe", "hf_counter", "rust_counter"]

_PLAIN_LAYOUTS = (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"])


@dataclass(frozen=True)
class ModelShape:
    """A model's vector width and the tokens it reads per input, special tokens included."""

    dim: int
    max_tokens: int


class TokenCounter(Protocol):
    """The model's tokenizer, as chunking uses it: no special tokens, no truncation, no padding."""

    special_tokens: int

    def counts(self, texts: list[str]) -> list[int]: ...

    def offsets(self, text: str) -> Sequence[tuple[int, int]]: ...


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def describe(folder: Path) -> ModelShape | None:
    """The shape of the model in *folder*, if its files state it plainly; None means load it to find out."""
    try:
        modules = _read_json(folder / "modules.json")
        kinds = [str(module["type"]).rsplit(".", 1)[-1] for module in modules]
        if kinds not in _PLAIN_LAYOUTS or modules[0].get("path", "") != "":
            return None
        config = _read_json(folder / "sentence_bert_config.json")
        if config.get("do_lower_case"):  # sentence-transformers lowers the text itself: not the tokenizer's job
            return None
        pooling = _read_json(folder / modules[1]["path"] / "config.json")
        modes = [key for key, on in pooling.items() if key.startswith("pooling_mode_") and on is True]
        if len(modes) != 1 or not (folder / "tokenizer.json").is_file():
            return None  # several modes are concatenated (a wider vector); no fast tokenizer to read
        return ModelShape(dim=int(pooling["word_embedding_dimension"]), max_tokens=int(config["max_seq_length"]))
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


class _RustCounter:
    """The model's ``tokenizer.json`` through the `tokenizers` library: loads in milliseconds."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.special_tokens = len(self._tokenizer.encode("", add_special_tokens=True).ids)

    def counts(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self._tokenizer.encode_batch(texts, add_special_tokens=False)]

    def offsets(self, text: str) -> Sequence[tuple[int, int]]:
        return self._tokenizer.encode(text, add_special_tokens=False).offsets


class _HFCounter:
    """The tokenizer of a loaded sentence-transformers model."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self.special_tokens = len(tokenizer("")["input_ids"])

    def counts(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self._tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def offsets(self, text: str) -> Sequence[tuple[int, int]]:
        encoded = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return encoded["offset_mapping"]  # type: ignore[no-any-return]


def rust_counter(folder: Path) -> TokenCounter:
    return _RustCounter(folder / "tokenizer.json")


def hf_counter(tokenizer: Any) -> TokenCounter:
    return _HFCounter(tokenizer)
