"""Every error cairn raises on purpose, in one tree.

    CairnError                      base: catch this to handle anything cairn reports
    ├── ConfigError                 a setting is missing, malformed or contradictory
    ├── StorageError                the vault could not read or write an object
    │   ├── IntegrityError          stored bytes do not match their recorded checksum
    │   ├── SourceError             a source (folder, bucket, repository) could not be listed or read
    │   └── DiskFull                the local disk under CAIRN_HOME has no space left
    ├── CatalogError                the catalog database is unreachable or refused a change
    │   └── LeaseLost               a worker's lease on a job passed to another worker
    ├── ParseError                  a document could not be turned into text
    │   ├── UnsupportedFormat       no parser handles this kind of file
    │   └── LimitExceeded           a file broke a parse limit (time, memory, size, nesting)
    ├── EmbeddingError              the embedding model could not be loaded or run
    ├── EngineError                 the vector engine (Milvus) refused or failed an operation
    │   └── IndexUnavailable        the Milvus server did not answer in time (down, restarting, unreachable)
    ├── GenerationError             the LLM endpoint failed, timed out or refused the request
    ├── NotFound                    a collection, document or version does not exist
    ├── InvalidRequest              arguments to a call are out of range or malformed
    ├── RateLimited                 too many requests from one key; retry later
    └── AuthError                   the caller is not who they claim, or may not do this
        ├── Unauthenticated         no key, an unknown, expired or revoked key
        └── Forbidden               a valid key whose role or grants do not allow the action

Each error's message says what happened and what to do next, and carries its context
(collection, document, path) as attributes so callers need not parse messages.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "CairnError",
    "CatalogError",
    "ConfigError",
    "DiskFull",
    "EmbeddingError",
    "EngineError",
    "Forbidden",
    "GenerationError",
    "IndexUnavailable",
    "InsecureEngine",
    "IntegrityError",
    "InvalidRequest",
    "LeaseLost",
    "LimitExceeded",
    "NotFound",
    "ParseError",
    "RateLimited",
    "SourceError",
    "StorageError",
    "Unauthenticated",
    "UnsupportedFormat",
]


class CairnError(Exception):
    """Base of every error cairn raises deliberately."""


class ConfigError(CairnError):
    """A setting is missing, malformed or contradictory."""


class CatalogError(CairnError):
    """The catalog database (SQLite in CAIRN_HOME, or PostgreSQL) is unreachable or refused a change."""


class LeaseLost(CatalogError):
    """A worker's lease on a job expired and another worker claimed it; this worker must leave the job alone."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class StorageError(CairnError):
    """The vault could not read or write an object."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class IntegrityError(StorageError):
    """Stored bytes do not match the checksum recorded when they were written."""


class SourceError(StorageError):
    """A source (a folder, an S3 prefix, a Git repository) could not be listed or read; nothing was removed."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source


class DiskFull(StorageError):
    """A write under CAIRN_HOME (catalog, vault, index, staged uploads) found no space left on the disk.

    ``path`` is where the write failed; nothing half-written is committed: free space and try again.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message, key=path)
        self.path = path


class ParseError(CairnError):
    """A document could not be turned into text."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class UnsupportedFormat(ParseError):
    """No parser handles this kind of file."""


class LimitExceeded(ParseError):
    """A file took too long, used too much memory, or expands too far (archive and image bombs)."""


class EmbeddingError(CairnError):
    """The embedding model could not be loaded or run."""


class EngineError(CairnError):
    """The vector engine refused or failed an operation."""

    def __init__(self, message: str, *, collection: str | None = None) -> None:
        super().__init__(message)
        self.collection = collection


class InsecureEngine(EngineError):
    """The Milvus server accepts its factory login (root:Milvus) or no login at all; cairn will not use it."""


class IndexUnavailable(EngineError):
    """The Milvus server did not answer within its timeout: it is down, restarting or unreachable. Passing:
    try again once it is back; jobs that meet it are retried by themselves."""


class GenerationError(CairnError):
    """The LLM endpoint could not be reached, timed out after its retries, or refused the request."""

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class NotFound(CairnError):
    """A collection, document or version does not exist."""


class InvalidRequest(CairnError):
    """Arguments to a call are out of range or malformed."""


class RateLimited(CairnError):
    """Too many requests (or open streams) from one key; ``retry_after`` is when to try again, in seconds."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthError(CairnError):
    """The caller is not who they claim to be, or may not do what they asked."""


class Unauthenticated(AuthError):
    """No key was given, or the key is unknown, expired or revoked."""


class Forbidden(AuthError):
    """The key is valid, but its role, tenant or collection grants do not allow the action."""
