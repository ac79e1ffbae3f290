"""What a search returns, shared by retrieval, generation and the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class RetrievedChunk:
    chunk_id: int
    document_id: UUID
    title: str
    text: str
    score: float
    collection: str
    metadata: dict[str, Any]
