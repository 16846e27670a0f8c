"""cairn: a secure, fast retrieval-augmented generation engine on Milvus and object storage.

from cairn import Cairn
cairn = Cairn()
cairn.ingest(["docs/"])
print(cairn.ask("How many days of parental leave do we get?").answer)

The names below are imported on first use, not with the package: cairn's worker processes (parsers, the
embedding worker) import one module of it each, and should not pay for the whole engine and HTTP client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cairn import errors
    from cairn.client import Client
    from cairn.core import Cairn
    from cairn.errors import CairnError
    from cairn.models import (
        Answer,
        Chunk,
        Citation,
        CollectionInfo,
        DocumentInfo,
        DocumentVersionInfo,
        Element,
        FailedFile,
        FileWarning,
        IngestReport,
        Location,
        SearchHit,
        SearchResult,
    )
    from cairn.settings import Settings

__version__ = "0.1.0"

# Where the public names live that are not models; the rest of `__all__` comes from cairn.models (and `errors` is
# the module itself). `__version__` is defined here, so it never reaches `__getattr__`.
_HOMES = {"Cairn": "cairn.core", "CairnError": "cairn.errors", "Client": "cairn.client", "Settings": "cairn.settings"}

__all__ = [
    "Answer",
    "Cairn",
    "CairnError",
    "Chunk",
    "Citation",
    "Client",
    "CollectionInfo",
    "DocumentInfo",
    "DocumentVersionInfo",
    "Element",
    "FailedFile",
    "FileWarning",
    "IngestReport",
    "Location",
    "SearchHit",
    "SearchResult",
    "Settings",
    "__version__",
    "errors",
]


def __getattr__(name: str) -> Any:
    if name == "errors":
        return importlib.import_module("cairn.errors")
    if name in __all__:
        value = getattr(importlib.import_module(_HOMES.get(name, "cairn.models")), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cairn' has no attribute {name!r}")
