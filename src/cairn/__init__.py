"""cairn: a secure, fast retrieval-augmented generation engine on Milvus and object storage.

from cairn import Cairn
cairn = Cairn()
cairn.ingest(["docs/"])
print(cairn.ask("How many days of parental leave do we get?").answer)
"""

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
