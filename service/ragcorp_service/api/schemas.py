"""Request and response bodies. Unknown fields are errors, not silently dropped."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ragcorp_service.api.json_values import value_problem
from ragcorp_service.generation.citations import Citation
from ragcorp_service.ingestion.chunking import is_visible
from ragcorp_service.retrieval.request import Mode, SearchRequest
from ragcorp_service.retrieval.results import RetrievedChunk

COLLECTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
Collection = Annotated[str, StringConstraints(pattern=COLLECTION_PATTERN)]


def _visible(value: str) -> str:
    if not is_visible(value):
        raise ValueError("has no visible characters (only spaces, zero-width or control characters)")
    return value


NonBlank = Annotated[str, StringConstraints(min_length=1, pattern=r"\S"), AfterValidator(_visible)]
#: Metadata is flat (a value is a scalar or a list of scalars) and small: it is returned with every
#: hit, so one 5 MB value once made each search return 15 MB. Bounds: 64 keys of 128 characters,
#: strings of 1,000, lists of 100 (items of 256), 16 KB as JSON in all.
MAX_METADATA_JSON_BYTES = 16_384
MetadataScalar = int | float | bool | None | Annotated[str, StringConstraints(max_length=1000)]
MetadataItem = int | float | bool | Annotated[str, StringConstraints(max_length=256)]
MetadataValue = MetadataScalar | Annotated[list[MetadataItem], Field(max_length=100)]


def _small(metadata: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(metadata, ensure_ascii=False).encode())
    if size > MAX_METADATA_JSON_BYTES:
        raise ValueError(f"metadata is {size} bytes as JSON; the limit is {MAX_METADATA_JSON_BYTES}")
    return metadata


Metadata = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=128)], MetadataValue],
    Field(max_length=64),
    AfterValidator(_small),
]


class Strict(BaseModel):
    """Unknown fields are errors; so is any value the service cannot store or search
    (NUL, lone surrogates, non-finite numbers, absurd nesting: see `json_values`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        problem = value_problem(data)
        if problem:
            raise ValueError(problem)
        return data


class DocumentIn(Strict):
    title: Annotated[NonBlank, StringConstraints(max_length=1000)]
    text: NonBlank = Field(description="Plain text or Markdown; limited by MAX_DOCUMENT_CHARS.")
    source: Annotated[str, StringConstraints(max_length=2000)] | None = None
    collection: Collection = "default"
    metadata: Metadata = Field(default_factory=dict)


class DocumentPatch(Strict):
    """A stored document's new title and/or metadata (replaced whole); its text cannot change."""

    title: Annotated[NonBlank, StringConstraints(max_length=1000)] | None = None
    metadata: Metadata | None = None

    @model_validator(mode="after")
    def _something(self) -> DocumentPatch:
        if self.title is None and self.metadata is None:
            raise ValueError("give title, metadata, or both")
        return self


class UploadFields(Strict):
    """The form fields beside `files` in a multipart upload; `metadata` arrives as a JSON string."""

    collection: Collection = "default"
    metadata: Metadata = Field(default_factory=dict, description="Applied to every file.")


class DocumentBatchIn(Strict):
    documents: list[DocumentIn] = Field(min_length=1, description="At most MAX_BATCH_DOCUMENTS documents.")


class DocumentOut(BaseModel):
    id: UUID
    collection: str
    title: str
    source: str | None
    metadata: dict[str, Any]
    content_sha256: str
    chunk_count: int
    created_at: datetime
    created: bool | None = Field(
        default=None, description="On ingest: false when identical content was already stored."
    )


class DocumentListOut(BaseModel):
    documents: list[DocumentOut]
    total: int
    limit: int
    offset: int


class DocumentsOut(BaseModel):
    documents: list[DocumentOut]


class ChunkOut(BaseModel):
    id: int
    ordinal: int
    text: str
    token_count: int


class DocumentDetailOut(DocumentOut):
    chunks: list[ChunkOut] | None = None


Query = Annotated[NonBlank, StringConstraints(max_length=2000)]


class RetrievalOptions(Strict):
    top_k: int = Field(default=5, ge=1, description="At most MAX_TOP_K.")
    mode: Mode = "hybrid"
    collection: Collection | None = None
    filters: Metadata = Field(default_factory=dict, description="Documents whose metadata contains these pairs.")

    def _request(self, query: str, allowed: frozenset[str] | None) -> SearchRequest:
        return SearchRequest(query, self.top_k, self.mode, self.collection, self.filters, allowed)


class SearchIn(RetrievalOptions):
    query: Query

    def to_request(self, allowed: frozenset[str] | None = None) -> SearchRequest:
        """`allowed`: the caller's API key's collections (None: all)."""
        return self._request(self.query, allowed)


class SearchOut(BaseModel):
    mode: Mode
    #: The domain's own type: its fields are the response's (no copy kept in step by hand).
    results: list[RetrievedChunk]


class AskIn(RetrievalOptions):
    question: Query
    stream: bool = Field(default=False, description="Answer as server-sent events.")

    def to_request(self, allowed: frozenset[str] | None = None) -> SearchRequest:
        return self._request(self.question, allowed)


class AskOut(BaseModel):
    answer: str
    citations: list[Citation]
    generator: str
    mode: Mode


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, dict[str, Any]]


class VersionOut(BaseModel):
    version: str
    schema_revision: str | None
    embedding_model: str
    embedding_dimensions: int
    generator: str
