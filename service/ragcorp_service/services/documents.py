"""Documents as use cases: ingest, retitle or re-tag, list, read, delete. The one way routes (and
anything else) reach stored documents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from ragcorp_service.ingestion import store
from ragcorp_service.ingestion.pipeline import IngestItem, Ingestor, IngestResult
from ragcorp_service.ingestion.store import DocumentRecord


@dataclass(frozen=True)
class StoredChunk:
    id: int
    ordinal: int
    text: str
    token_count: int


@dataclass(frozen=True)
class DocumentService:
    pool: asyncpg.Pool
    ingestor: Ingestor

    async def ingest(self, items: list[IngestItem]) -> list[IngestResult]:
        """Store new content; content already in its collection is returned, not stored again."""
        return await self.ingestor.ingest(items)

    async def update(
        self, document_id: UUID, *, title: str | None, metadata: dict[str, Any] | None
    ) -> DocumentRecord | None:
        return await self.ingestor.update(document_id, title=title, metadata=metadata)

    async def page(self, *, collection: str | None, limit: int, offset: int) -> tuple[list[DocumentRecord], int]:
        return await store.list_documents(self.pool, collection=collection, limit=limit, offset=offset)

    async def get(self, document_id: UUID) -> DocumentRecord | None:
        return await store.get_document(self.pool, document_id)

    async def chunks(self, document_id: UUID) -> list[StoredChunk]:
        return [StoredChunk(**dict(row)) for row in await store.get_chunks(self.pool, document_id)]

    async def delete(self, document_id: UUID) -> bool:
        async with self.pool.acquire() as connection:
            return await store.delete_document(connection, document_id)
