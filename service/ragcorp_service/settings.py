"""The service's configuration, read once from the environment.

Every variable the operator renders into a Pod is a field here (a test holds the
two halves to that contract). Values are checked when the process starts, so a
typo in a Deployment fails fast with the variable's name instead of surfacing as
a confusing error on the first request.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ragcorp_service import __version__, local_models

LOCAL_EMBEDDING_MODEL = local_models.DEFAULT.name
LOCAL_EMBEDDING_DIMENSIONS = local_models.DIMENSIONS
GEMINI_EMBEDDING_MODEL = "gemini-embedding-001"
GEMINI_EMBEDDING_DIMENSIONS = 768
SCOPES = frozenset({"ingest", "ask", "metrics"})

Provider = Literal["local", "gemini"]


@dataclass(frozen=True)
class KeyGrant:
    """What one API key may do: its scopes, and the collections it reads and writes (None: all)."""

    scopes: frozenset[str]
    collections: frozenset[str] | None = None


def parse_api_keys(raw: str) -> dict[str, KeyGrant]:
    """Parse `key:scope,scope[:collection,collection];key2:scope` into each key's grant.

    Raises ValueError naming the entry at fault, never the key itself, so that a
    secret cannot leak into a start-up log.
    """
    keys: dict[str, KeyGrant] = {}
    for position, entry in enumerate(filter(None, (e.strip() for e in raw.split(";"))), 1):
        key, sep, rest = entry.partition(":")
        scope_list, limited, collection_list = rest.partition(":")
        key = key.strip()
        scopes = frozenset(s.strip() for s in scope_list.split(",") if s.strip())
        collections = frozenset(c.strip() for c in collection_list.split(",") if c.strip())
        if not sep or not key or not scopes or (limited and not collections):
            raise ValueError(f"entry {position} must look like 'key:scope[,scope][:collection[,collection]]'")
        unknown = scopes - SCOPES
        if unknown:
            raise ValueError(
                f"entry {position} names unknown scope(s) {sorted(unknown)}; known scopes are {sorted(SCOPES)}"
            )
        if key in keys:
            raise ValueError(f"entry {position} repeats an earlier key")
        keys[key] = KeyGrant(scopes, collections if limited else None)
    return keys


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Environment variables, upper-cased field names (`DB_POOL_MAX_SIZE`, ...)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # Where the data lives. Unset means: start the embedded PostgreSQL.
    database_url: str | None = None
    # Optional: searches and answers read here (a streaming replica of DATABASE_URL); writes stay on DATABASE_URL.
    database_read_url: str | None = None
    #: The image's build version (the Dockerfile's VERSION build argument, as RAGCORP_VERSION);
    #: the installed package's otherwise. /version, traces and the OpenAPI document report it.
    ragcorp_version: str = __version__
    ragcorp_data_dir: Path = Field(default_factory=lambda: platformdirs.user_data_path("ragcorp"))
    #: The embedded server's buffer pool: `auto` (a quarter of the machine's memory, 128 MB to 4 GB,
    #: as PostgreSQL's docs advise) or a size such as 512MB; applied when it starts.
    embedded_pg_shared_buffers: str = Field(default="auto", pattern=r"^(auto|[0-9]+(kB|MB|GB))$")
    db_pool_min_size: int = Field(default=2, ge=1, le=100)
    db_pool_max_size: int = Field(default=10, ge=1, le=200)
    db_statement_timeout_ms: int = Field(default=30_000, ge=100)

    # Providers. A Gemini key switches both embeddings and generation to Gemini.
    google_api_key: SecretStr | None = None
    #: Which embedder the schema is for, when it cannot be told from GOOGLE_API_KEY: migration Jobs
    #: size the vector column without holding the key (unset: gemini with a key, else local).
    embedding_provider: Provider | None = None
    gemini_base_url: str | None = None
    gemini_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    gemini_max_attempts: int = Field(default=4, ge=1, le=10)
    gemini_retry_initial_delay_seconds: float = Field(default=1.0, ge=0, le=60)
    embedding_model: str | None = None
    embedding_dimensions: int | None = Field(default=None, ge=1, le=16_000)
    #: Where the offline embedder's ONNX files are (exported once from the bundled weights).
    embedder_onnx_dir: Path = Field(default_factory=local_models.default_onnx_dir)
    #: Texts the offline embedder runs at once, one core each; unset: the cores this process may use.
    embedder_threads: int | None = Field(default=None, ge=1, le=256)
    generation_model: str = "gemini-2.5-flash"

    # HTTP.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65_535)
    api_keys: SecretStr | None = None
    allow_anonymous: bool = False
    #: Proxies (comma-separated addresses, or *) whose X-Forwarded-For/-Proto are believed; none by default.
    forwarded_allow_ips: str = ""
    allowed_origins: str = ""
    rate_limit_rps: float = Field(default=20.0, gt=0)
    rate_limit_burst: int | None = Field(default=None, ge=1)

    # Request limits: each rejection names the limit in its message.
    max_request_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    max_document_chars: int = Field(default=2_000_000, ge=1)
    max_batch_documents: int = Field(default=64, ge=1, le=1000)
    max_upload_files: int = Field(default=16, ge=1)
    #: Each uploaded file is parsed in a child process killed after this long (a 413 names it).
    parse_timeout_seconds: float = Field(default=30.0, gt=0)
    #: Ingests (each up to MAX_REQUEST_BYTES and one parsing process) served at once per replica;
    #: more wait up to INGEST_SLOT_WAIT_SECONDS for a turn, then get a 503 with Retry-After.
    max_concurrent_ingests: int = Field(default=4, ge=1, le=256)
    ingest_slot_wait_seconds: float = Field(default=30.0, ge=0)
    #: Recent postings wait in a tail that every query reads whole; a write that leaves this many
    #: there merges them into posting blocks (see ingestion/postings.py).
    postings_merge_at: int = Field(default=20_000, ge=1)
    #: Memory per replica for decoded posting lists that keyword queries share (retrieval/block_cache.py);
    #: 0 turns it off. About 28 bytes a posting: the default holds the common words of a 100k-chunk corpus.
    keyword_cache_mb: int = Field(default=128, ge=0)
    #: A connection whose request line and headers take longer is closed (slowloris).
    request_header_timeout_seconds: float = Field(default=10.0, gt=0)
    #: A request body that stalls this long between pieces gets a 408.
    request_body_timeout_seconds: float = Field(default=30.0, gt=0)
    #: A request body must be in within this long in all (a byte every 20 s never stalls, yet ties up
    #: a connection for ever); a 408 past it.
    request_body_deadline_seconds: float = Field(default=120.0, gt=0)
    #: Connections and requests served at once; more are answered 503 by uvicorn (a flood of slow
    #: clients cannot exhaust file descriptors or memory).
    max_connections: int = Field(default=1000, ge=1)
    #: The request line and headers together, in bytes (431 past it).
    max_request_header_bytes: int = Field(default=16_384, ge=1024)
    #: After SIGTERM, seconds of serving with `Connection: close` and failing readiness before shutting down.
    shutdown_drain_seconds: float = Field(default=5.0, ge=0)
    max_top_k: int = Field(default=100, ge=1, le=1000)

    # Chunking, in embedder tokens.
    chunk_tokens: int = Field(default=200, ge=16, le=8192)
    chunk_overlap_tokens: int = Field(default=32, ge=0)

    # Operations.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    otel_enabled: bool = False
    otel_exporter_otlp_endpoint: str = "http://localhost:4317"
    otel_service_name: str = "ragcorp-service"

    @field_validator("ragcorp_version", mode="before")
    @classmethod
    def _unset_version(cls, value: object) -> object:
        """An image built without VERSION sets RAGCORP_VERSION empty: the package's version then."""
        return value or __version__

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url", "database_read_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("google_api_key")
    @classmethod
    def _blank_key_is_no_key(cls, value: SecretStr | None) -> SecretStr | None:
        """Compose passes `GOOGLE_API_KEY: ${GOOGLE_API_KEY:-}`: an empty key means the offline provider."""
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("api_keys")
    @classmethod
    def _valid_api_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip():
            parse_api_keys(value.get_secret_value())
            return value
        return None

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ValueError("DB_POOL_MIN_SIZE must not exceed DB_POOL_MAX_SIZE")
        if self.database_read_url and not self.database_url:
            raise ValueError("DATABASE_READ_URL is a replica of DATABASE_URL: set DATABASE_URL too")
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ValueError("CHUNK_OVERLAP_TOKENS must be smaller than CHUNK_TOKENS")
        if self.provider == "local":
            if self.embedding_model not in (None, *local_models.LOCAL_MODELS):
                raise ValueError(
                    f"EMBEDDING_MODEL={self.embedding_model!r} needs GOOGLE_API_KEY; without it the bundled "
                    f"model runs as one of {', '.join(local_models.LOCAL_MODELS)} (default {LOCAL_EMBEDDING_MODEL})"
                )
            if self.embedding_dimensions not in (None, LOCAL_EMBEDDING_DIMENSIONS):
                raise ValueError(
                    f"EMBEDDING_DIMENSIONS must be {LOCAL_EMBEDDING_DIMENSIONS} for {local_models.BASE_MODEL}"
                )
        return self

    @property
    def provider(self) -> Provider:
        return self.embedding_provider or ("gemini" if self.google_api_key is not None else "local")

    def serving_problem(self) -> str | None:
        """What forbids serving HTTP with these settings; commands that do not serve (migrations, the
        smoke test) run without API_KEYS or the Gemini key."""
        if self.api_keys is None and not self.allow_anonymous and not _is_loopback(self.host):
            return (
                f"API_KEYS is unset and HOST={self.host} is not loopback: set API_KEYS "
                "(key:scope,scope;...) or, to serve without authentication on purpose, ALLOW_ANONYMOUS=1"
            )
        if self.provider == "gemini" and self.google_api_key is None:
            return "EMBEDDING_PROVIDER=gemini needs GOOGLE_API_KEY to serve"
        return None

    @property
    def resolved_embedding_model(self) -> str:
        if self.embedding_model:
            return self.embedding_model
        return GEMINI_EMBEDDING_MODEL if self.provider == "gemini" else LOCAL_EMBEDDING_MODEL

    @property
    def resolved_embedding_dimensions(self) -> int:
        if self.embedding_dimensions:
            return self.embedding_dimensions
        return GEMINI_EMBEDDING_DIMENSIONS if self.provider == "gemini" else LOCAL_EMBEDDING_DIMENSIONS

    @cached_property
    def api_key_grants(self) -> dict[str, KeyGrant]:
        if self.api_keys is None:
            return {}
        return parse_api_keys(self.api_keys.get_secret_value())

    @property
    def api_key_scopes(self) -> dict[str, frozenset[str]]:
        return {key: grant.scopes for key, grant in self.api_key_grants.items()}

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.allowed_origins.split(",") if o.strip()]

    @property
    def effective_burst(self) -> int:
        return self.rate_limit_burst or max(1, int(self.rate_limit_rps * 2))


class SettingsError(Exception):
    """Raised with a message that names each offending environment variable."""


def load_settings(*, serving: bool = False, **overrides: object) -> Settings:
    """Read the environment, turning pydantic's report into one readable line per variable.

    `serving` adds the checks that only serving HTTP needs (see `Settings.serving_problem`).
    """
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "configuration"
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"invalid setting {name}: {message}")
        raise SettingsError("\n".join(lines)) from None
    problem = settings.serving_problem() if serving else None
    if problem:
        raise SettingsError(f"invalid settings for serving: {problem}")
    return settings
