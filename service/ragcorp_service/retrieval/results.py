"""What a search returns, shared by retrieval, generation and the API."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg


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


_ROWS_SQL = """
    SELECT c.id, c.document_id, d.title, c.text, c.collection, d.metadata::text AS metadata, r.score
    FROM unnest($1::int8[], $2::float8[]) AS r(chunk_id, score)
    JOIN chunks c ON c.id = r.chunk_id JOIN documents d ON d.id = c.document_id
    ORDER BY r.score DESC, c.id
"""


async def scored_chunks(
    connection: asyncpg.Connection, chunk_ids: Sequence[int], scores: Sequence[float]
) -> list[RetrievedChunk]:
    """The chunks with these ids, carrying these scores, best first (then by id); a chunk deleted
    meanwhile is left out."""
    rows = await connection.fetch(_ROWS_SQL, list(chunk_ids), list(scores))
    return [row_to_chunk(row) for row in rows]
