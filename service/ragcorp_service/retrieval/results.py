"""What a search returns, shared by retrieval, generation and the API."""

from __future__ import annotations

import json
from collections.abc import Mapping
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


def row_to_chunk(row: Mapping[str, Any]) -> RetrievedChunk:
    """A chunk from a row of id, document_id, title, text, collection, metadata (JSON text) and score."""
    return RetrievedChunk(
        chunk_id=row["id"],
        document_id=row["document_id"],
        title=row["title"],
        text=row["text"],
        score=float(row["score"]),
        collection=row["collection"],
        metadata=json.loads(row["metadata"]),
    )
