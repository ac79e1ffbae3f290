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
from ragcorp_service.services.errors import Forbidden


@dataclass(frozen=True)
class StoredChunk:
    id: int
    ordinal: int
    text: str
    token_count: int


#: The collections a caller may use (its API key's); None: every one.
Allowed = frozenset[str] | None


def may_use(allowed: Allowed, collection: str) -> bool:
    return allowed is None or collection in allowed


def check_collection(allowed: Allowed, collection: str) -> None:
    if not may_use(allowed, collection):
        raise Forbidden(f"this API key may not use collection {collection!r}")


@dataclass(frozen=True)
class DocumentService:
    """Every method takes the caller's `allowed` collections: a document elsewhere is refused
    when named by collection (403) and does not exist when named by id (404, nothing leaks)."""

    pool: asyncpg.Pool
    ingestor: Ingestor

    async def ingest(self, items: list[IngestItem], allowed: Allowed = None) -> list[IngestResult]:
        """Store new content; content already in its collection is returned, not stored again."""
        for item in items:
            check_collection(allowed, item.collection)
        return await self.ingestor.ingest(items)

    async def update(
        self, document_id: UUID, *, title: str | None, metadata: dict[str, Any] | None, allowed: Allowed = None
    ) -> DocumentRecord | None:
        if await self._hidden(document_id, allowed):
            return None
        return await self.ingestor.update(document_id, title=title, metadata=metadata)

    async def page(
        self, *, collection: str | None, limit: int, offset: int, allowed: Allowed = None
    ) -> tuple[list[DocumentRecord], int]:
        if collection is not None:
            check_collection(allowed, collection)
        return await store.list_documents(
            self.pool, collection=collection, limit=limit, offset=offset, allowed_collections=allowed
        )

    async def get(self, document_id: UUID, allowed: Allowed = None) -> DocumentRecord | None:
        record = await store.get_document(self.pool, document_id)
        return record if record is not None and may_use(allowed, record.collection) else None

    async def _hidden(self, document_id: UUID, allowed: Allowed) -> bool:
        """A document the caller's key may not see (one more read, and only for a limited key: the
        write itself says when there is no document at all)."""
        return allowed is not None and await self.get(document_id, allowed) is None

    async def chunks(self, document_id: UUID) -> list[StoredChunk]:
        return [StoredChunk(**dict(row)) for row in await store.get_chunks(self.pool, document_id)]

    async def delete(self, document_id: UUID, allowed: Allowed = None) -> bool:
        if await self._hidden(document_id, allowed):
            return False
        async with self.pool.acquire() as connection:
            deleted = await store.delete_document(connection, document_id)
        if deleted:
            await self.ingestor.merge_if_due()
        return deleted
