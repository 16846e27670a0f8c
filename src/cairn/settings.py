"""cairn's one typed configuration object.

Values come, highest precedence first, from keyword arguments, ``CAIRN_*`` environment variables,
a ``cairn.toml`` in the working directory (or the file named by ``CAIRN_CONFIG``), then defaults.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["COLLECTION_NAME_PATTERN", "Settings", "validate_collection_name"]

COLLECTION_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def validate_collection_name(name: str) -> str:
    """Return *name* if it is a valid collection name, else raise ``ValueError`` saying why."""
    if not COLLECTION_NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"invalid collection name {name!r}: use 1-48 characters, lowercase letters, digits and "
            "underscores, starting with a letter (for example 'default' or 'hr_policies')"
        )
    return name


class Settings(BaseSettings):
    """Everything cairn can be configured with. Validated at construction."""

    model_config = SettingsConfigDict(env_prefix="CAIRN_", extra="forbid", validate_default=True)

    home: Path = Field(
        default=Path(".cairn"), description="Holds the embedded Milvus Lite database and the local vault."
    )
    milvus_uri: str | None = Field(
        default=None, description="A Milvus server URI (http://host:19530); unset means embedded Milvus Lite."
    )
    milvus_token: SecretStr | None = Field(
        default=None, description="user:password or API token for the Milvus server."
    )
    milvus_tls_ca: Path | None = Field(
        default=None, description="CA certificate that signed the Milvus server's TLS certificate (https:// URIs)."
    )
    milvus_insecure: bool = Field(
        default=False,
        description="Allow a Milvus server that still accepts root:Milvus or has authentication off (never in "
        "production).",
    )
    milvus_consistency: Literal["Strong", "Bounded", "Session", "Eventually"] = Field(
        default="Bounded",
        description="Consistency of searches on a Milvus server; reads right after this process's writes, "
        "deletes and ACL changes are Strong regardless.",
    )
    milvus_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="Time a read from a Milvus server (a search, a query) may take, retries included; a server that "
        "is down then fails the request with 503 index_unavailable instead of hanging.",
    )
    milvus_write_timeout_s: float = Field(
        default=60.0, gt=0, le=3600, description="Time a write to a Milvus server (insert, delete, load) may take."
    )
    catalog_url: SecretStr | None = Field(
        default=None,
        description="The catalog database shared by every process: postgresql+psycopg://USER:PASSWORD@HOST/DB "
        "for servers and clusters; unset means a SQLite file in CAIRN_HOME (one machine).",
    )
    retire_grace_s: float | None = Field(
        default=None,
        ge=0,
        le=86_400,
        description="Seconds replaced index rows stay (hidden) before they are deleted, so a search that read "
        "the catalog earlier in any process finishes on them. Unset: 0 on Milvus Lite (one process; its searches "
        "are waited for), 120 on a server (twice the HTTP request timeout).",
    )
    job_retry_s: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="A job that meets an outage (vault, engine, catalog) waits this long before its next try, "
        "doubling each time up to job_retry_max_s.",
    )
    job_retry_max_s: float = Field(default=60.0, ge=0, le=3600, description="The longest wait between a job's tries.")
    job_max_faults: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="Tries after an outage before a job fails (about 7 minutes at the default waits).",
    )
    jobs_keep_days: int = Field(
        default=30, ge=1, le=3650, description="Finished ingest jobs are kept (listed, with reports) this many days."
    )
    stale_writer_s: float = Field(
        default=3600.0,
        gt=0,
        description="A pending version whose writer ran on another host and has not published it for this long "
        "is abandoned (writers on this host are checked directly).",
    )
    milvus_bucket: str | None = Field(
        default=None,
        description="The S3 bucket the Milvus server persists to (its minio.bucketName); enables bulk import "
        "of large batches through it, with the AWS_* endpoint and credentials.",
    )
    bulk_insert_min_rows: int = Field(
        default=100_000,
        ge=1,
        description="Batches of at least this many rows use bulk import (with CAIRN_MILVUS_BUCKET): the crossover "
        "`cairn bench bulk` measured on one node (docs/benchmarks.md: Parquet import 1.09x row inserts at 100k "
        "rows, 0.98x at 50k); set it to the crossover the bench shows on your cluster.",
    )
    default_collection: str = "default"
    embed_model: str = Field(
        default="all-MiniLM-L6-v2",
        description="A sentence-transformers model name or local path; the default is the packaged copy.",
    )
    embed_batch_size: int = Field(
        default=16,
        ge=1,
        le=4096,
        description="Texts per forward pass of the model. 16 embedded 7-13% faster than 32 on a 2-core CPU "
        "(docs/benchmarks.md); a GPU wants more (128).",
    )
    embed_device: str = "cpu"
    embed_worker: bool = Field(
        default=True,
        description="Embed ingested documents in a lower-priority process, so queries keep their latency.",
    )
    chunk_max_tokens: int = Field(default=256, ge=16, le=8192, description="Upper bound, incl. special tokens.")
    chunk_overlap_tokens: int = Field(default=32, ge=0)
    embed_heading_context: bool = Field(
        default=False,
        description="Embed each chunk with its heading path (`Title > Section`) as a first paragraph "
        "(`cairn.chunking.embedding_input`); stored and displayed text are unchanged (docs/quality.md).",
    )
    bm25_k1: float = Field(
        default=1.2,
        ge=0.0,
        le=3.0,
        description="BM25 term-frequency saturation of new collections' keyword index (Milvus's default 1.2; "
        "docs/quality.md).",
    )
    bm25_b: float = Field(
        default=0.75,
        ge=0.0,
        le=1.0,
        description="BM25 length normalisation of new collections' keyword index (Milvus's default 0.75; "
        "docs/quality.md).",
    )
    keyword_heading_context: bool = Field(
        default=False,
        description="New collections' keyword index reads each chunk with its heading path (`Title > Section`) "
        "before its text, as `embed_heading_context` does for the model; stored text unchanged (docs/quality.md).",
    )
    bm25_analyzer: Literal["standard", "english"] = Field(
        default="standard",
        description="Text analyzer of new collections' keyword index: `standard` (words as written) or `english` "
        "(lower-cased, stemmed, English stop words dropped); docs/quality.md.",
    )
    hybrid_fusion: Literal["weighted", "rrf"] = Field(
        default="weighted",
        description="How hybrid search fuses its dense and keyword lists: `weighted` (each leg's scores over its best, "
        'summed with `fusion_dense_weight`) or `rrf` (reciprocal rank fusion); docs/quality.md, "Fusion".',
    )
    fusion_dense_weight: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="Weighted fusion: the dense leg's share of a hybrid score (the keyword leg has the rest).",
    )
    fusion_heading_weight: float = Field(
        default=0.03,  # as `cairn.index.fusion.HybridFusion.heading_weight`
        ge=0.0,
        le=1.0,
        description="Weighted fusion: the share added for query words in a chunk's headings (its document's title "
        'and section path, BM25), over the candidates\' best; 0 turns it off. docs/quality.md, "Headings".',
    )
    rrf_k: int = Field(default=5, ge=1, description="RRF constant of `rrf` fusion; 5 measured best (docs/quality.md).")
    exact_phrase_promotion: bool = Field(
        default=False,
        description="Hybrid search moves chunks that contain a multi-word query verbatim to the front; off "
        "because it cost nDCG@10 on the evaluation sets (docs/quality.md).",
    )
    dense_index: Literal["FLAT", "AUTOINDEX", "IVF_FLAT", "HNSW"] = Field(
        default="FLAT",
        description="Vector index for new collections. FLAT is exact; on Milvus Lite 2.5 AUTOINDEX/IVF_FLAT "
        "lost most recall on the benchmark here (docs/benchmarks.md). HNSW needs a Milvus server.",
    )
    ingest_batch_chunks: int = Field(default=256, ge=1, description="Chunks embedded and committed together.")
    query_cache_size: int = Field(
        default=1024, ge=0, description="Query vectors kept (LRU, by model and text); 0 embeds every query anew."
    )
    parse_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, le=256, description="Parser processes per ingest."
    )
    parse_timeout_s: float = Field(default=300.0, gt=0, description="Time one file may take to parse (OCR included).")
    parse_memory_mb: int = Field(default=2048, ge=256, description="Address space of one parser process, MiB.")
    archive_max_depth: int = Field(default=3, ge=1, le=16, description="Archives/attachments nested in each other.")
    archive_max_members: int = Field(default=10_000, ge=1, description="Members of one archive, nesting included.")
    archive_max_expanded_mb: int = Field(default=512, ge=1, description="Bytes one archive may expand to, MiB.")
    store: str | None = Field(
        default=None,
        description="Where the vault lives: s3://BUCKET[/PREFIX] or a directory; default CAIRN_HOME/vault. "
        "S3 endpoint, region and credentials come from the standard AWS_* variables and ~/.aws.",
    )
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto", description="'path' for most on-premises stores (MinIO, Ceph, SeaweedFS)."
    )
    s3_verify_tls: bool = Field(default=True, description="Verify the S3 endpoint's TLS certificate.")
    s3_ca_bundle: Path | None = Field(default=None, description="CA bundle for the S3 endpoint (or AWS_CA_BUNDLE).")
    s3_max_attempts: int = Field(default=3, ge=1, le=20, description="Attempts per S3 request, with backoff.")
    s3_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Time to connect to the S3 endpoint, and the longest wait for its next bytes, per attempt.",
    )
    s3_multipart_threshold_mb: int = Field(default=16, ge=5, description="Objects at least this big go in parts.")
    s3_sse: Literal["none", "AES256", "aws:kms"] = Field(
        default="none", description="Server-side encryption: AES256 (SSE-S3) or aws:kms (SSE-KMS)."
    )
    s3_sse_kms_key_id: str | None = Field(default=None, description="KMS key for SSE-KMS (default: the account's).")
    s3_sse_c_key_file: Path | None = Field(
        default=None, description="A 32-byte customer key (raw, base64 or hex) for SSE-C."
    )
    encryption_key_file: Path | None = Field(
        default=None, description="Master key for client-side envelope encryption (AES-256-GCM) of the vault."
    )
    encryption_key: SecretStr | None = Field(default=None, description="The same, as base64 or hex text.")
    llm_base_url: str | None = Field(
        default=None,
        description="An OpenAI-compatible endpoint (vLLM http://host:8000/v1, Ollama http://host:11434/v1, "
        "llama.cpp http://host:8080/v1, TGI http://host:8080/v1, https://api.openai.com/v1); unset means "
        "extractive answers.",
    )
    llm_model: str | None = Field(default=None, description="The model name the endpoint serves.")
    llm_api_key: SecretStr | None = Field(default=None, description="Bearer key for the endpoint, if it needs one.")
    llm_context_tokens: int = Field(
        default=8192, ge=1024, le=4_000_000, description="The model's context size; passages are packed to fit."
    )
    llm_max_answer_tokens: int = Field(
        default=512, ge=16, description="Tokens reserved for (and allowed to) the answer."
    )
    llm_timeout_s: float = Field(default=60.0, gt=0, le=3600, description="Time one LLM request attempt may take.")
    llm_max_retries: int = Field(default=2, ge=0, le=10, description="Retries of a failed LLM request, with backoff.")
    rerank_model: str = Field(
        default="cross-encoder/ms-marco-MiniLM-L6-v2",
        description="sentence-transformers CrossEncoder (a local directory or a hub cache entry; never downloaded) "
        "used by search/ask with rerank.",
    )
    citation_min_support: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Support (0-1) a cited passage must give its sentence."
    )
    citation_policy: Literal["flag", "drop"] = Field(
        default="flag", description="What happens to a citation below the support floor: flag it or drop it."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("CAIRN_CONFIG", "cairn.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))

    @field_validator("default_collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        return validate_collection_name(value)

    @field_validator("milvus_uri")
    @classmethod
    def _milvus_uri(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("http://", "https://", "tcp://", "unix:")) and not value.endswith(".db"):
            raise ValueError(
                f"CAIRN_MILVUS_URI={value!r} is neither a server URI (http://host:19530) nor a Milvus Lite "
                "file ending in .db"
            )
        return value

    @model_validator(mode="after")
    def _overlap_below_max(self) -> Settings:
        if self.chunk_overlap_tokens >= self.chunk_max_tokens // 2:
            raise ValueError(
                f"chunk_overlap_tokens={self.chunk_overlap_tokens} must be less than half of "
                f"chunk_max_tokens={self.chunk_max_tokens}"
            )
        return self

    @property
    def vault_dir(self) -> Path:
        return self.home / "vault"

    @field_validator("llm_base_url")
    @classmethod
    def _llm_base_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"CAIRN_LLM_BASE_URL={value!r} is not an http(s) URL such as http://localhost:8000/v1")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _llm_complete(self) -> Settings:
        if self.llm_base_url is not None and not self.llm_model:
            raise ValueError(f"CAIRN_LLM_BASE_URL={self.llm_base_url} needs CAIRN_LLM_MODEL (the model it serves)")
        if self.llm_max_answer_tokens * 2 > self.llm_context_tokens:
            raise ValueError(
                f"llm_max_answer_tokens={self.llm_max_answer_tokens} must be at most half of "
                f"llm_context_tokens={self.llm_context_tokens}, to leave room for the passages"
            )
        return self

    @model_validator(mode="after")
    def _one_encryption_key(self) -> Settings:
        if self.encryption_key_file is not None and self.encryption_key is not None:
            raise ValueError("set CAIRN_ENCRYPTION_KEY_FILE or CAIRN_ENCRYPTION_KEY, not both")
        if self.s3_sse_kms_key_id and self.s3_sse != "aws:kms":
            raise ValueError("CAIRN_S3_SSE_KMS_KEY_ID needs CAIRN_S3_SSE=aws:kms")
        return self

    @property
    def catalog_database(self) -> str:
        """The catalog's database URL: the configured one, else a SQLite file in ``home``."""
        if self.catalog_url is not None and self.catalog_url.get_secret_value():
            return self.catalog_url.get_secret_value()
        return f"sqlite:///{(self.home / 'catalog.db').absolute()}"

    @property
    def retire_grace(self) -> float:
        """`retire_grace_s`, or its default for the engine in use."""
        if self.retire_grace_s is not None:
            return self.retire_grace_s
        return 0.0 if self.milvus_uri is None else 120.0

    @property
    def engine_uri(self) -> str:
        """The URI handed to ``MilvusClient``: the server if configured, else the embedded file."""
        return self.milvus_uri or str((self.home / "milvus.db").resolve())

    def public_dict(self) -> dict[str, Any]:
        """Settings as plain data with secrets redacted, for ``info`` views and logs."""
        return self.model_dump(mode="json")
