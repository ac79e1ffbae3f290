"""Ingesting a batch of documents: dedupe, chunk, embed together, store together.

Embedding dominates the cost, so all new chunks of a batch go to the embedder
in one call; storing is one transaction for the batch (one statement per table
for all its documents), so a request's documents are stored all or none.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from uuid import UUID

import anyio
import asyncpg

from ragcorp_service.ingestion.chunking import Chunk, chunk_text, normalize_text
from ragcorp_service.ingestion.postings import DEFAULT_MERGE_AT, merge_if_due
from ragcorp_service.ingestion.store import (
    ChunkedDocument,
    DocumentRecord,
    NewDocument,
    find_existing,
    get_chunks,
    get_document,
    insert_documents,
    update_document,
)
from ragcorp_service.providers.embedders import Embedder, Vector


@dataclass(frozen=True)
class IngestItem:
    title: str
    text: str
    collection: str = "default"
    source: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestResult:
    document: DocumentRecord
    created: bool


def embedding_input(title: str, chunk: Chunk) -> str:
    """What the embedder sees: the title gives a chunk the context its text may lack."""
    return f"{title}\n\n{chunk.text}" if title else chunk.text


#: Bidirectional controls: in a title (shown in lists, citations, UIs) they can make a name read
#: as another ("invoice\u202eexe.pdf"); titles lose them. Texts keep theirs (a quoted Arabic passage).
_BIDI_CONTROLS = MappingProxyType(
    dict.fromkeys(map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
)


def clean_title(title: str) -> str:
    """A title as stored: NFC, no NUL (no text store keeps one), no bidirectional controls, no
    surrounding space."""
    return unicodedata.normalize("NFC", title).replace("\x00", "").translate(_BIDI_CONTROLS).strip()


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Ingestor:
    def __init__(
        self,
        pool: asyncpg.Pool,
        embedder: Embedder,
        *,
        chunk_tokens: int,
        overlap_tokens: int,
        merge_at: int = DEFAULT_MERGE_AT,
    ) -> None:
        self._pool = pool
        self._embedder = embedder
        self._chunk_tokens = chunk_tokens
        self._overlap_tokens = overlap_tokens
        self._merge_at = merge_at

    async def merge_if_due(self) -> None:
        """Move recent postings into blocks once there are enough (`postings.merge_if_due`)."""
        await merge_if_due(self._pool, self._merge_at)

    async def embed(self, texts: list[str]) -> list[Vector]:
        """Embeddings of what `embedding_input` made of each chunk (the bulk import embeds with this too)."""
        return await self._embedder.embed_documents(texts)

    def chunk(self, text: str) -> list[Chunk]:
        return chunk_text(
            text,
            max_tokens=self._chunk_tokens,
            overlap_tokens=self._overlap_tokens,
            count_tokens=self._embedder.count_tokens,
        )

    async def ingest(self, items: list[IngestItem]) -> list[IngestResult]:
        documents = [
            NewDocument(
                collection=item.collection,
                title=clean_title(item.title),
                text=(text := normalize_text(item.text)),
                source=item.source,
                metadata=item.metadata,
                content_sha256=content_hash(text),
            )
            for item in items
        ]
        existing: dict[tuple[str, str], DocumentRecord] = {}
        for collection in {d.collection for d in documents}:
            hashes = [d.content_sha256 for d in documents if d.collection == collection]
            found = await find_existing(self._pool, collection, hashes)
            existing.update({(collection, sha): record for sha, record in found.items()})

        # Chunk each new document once (the first of any in-batch duplicates), then embed all together.
        new: dict[tuple[str, str], NewDocument] = {}
        for document in documents:
            new.setdefault((document.collection, document.content_sha256), document)
        new = {key: document for key, document in new.items() if key not in existing}
        # Tokenizing a long document takes a while: keep it off the event loop.
        chunked = await anyio.to_thread.run_sync(lambda: [self.chunk(d.text) for d in new.values()])
        pending = {key: (document, chunks) for (key, document), chunks in zip(new.items(), chunked, strict=True)}
        inputs = [embedding_input(doc.title, chunk) for doc, chunks in pending.values() for chunk in chunks]
        vectors = iter(await self._embedder.embed_documents(inputs))

        batch = [
            ChunkedDocument(document, chunks, [next(vectors) for _ in chunks]) for document, chunks in pending.values()
        ]
        async with self._pool.acquire() as connection:
            written = await insert_documents(connection, batch)
        await self.merge_if_due()
        stored = {key: IngestResult(record, created) for key, (record, created) in zip(pending, written, strict=True)}

        results = []
        for document in documents:
            key = (document.collection, document.content_sha256)
            if key in existing:
                results.append(IngestResult(existing[key], False))
            else:
                result = stored[key]
                first = next(d for d in documents if (d.collection, d.content_sha256) == key)
                results.append(result if document is first else IngestResult(result.document, False))
        return results

    async def update(
        self, document_id: UUID, *, title: str | None, metadata: dict[str, Any] | None
    ) -> DocumentRecord | None:
        """New title and/or metadata for a stored document (its text stays); None when there is none.

        A new title is embedded with each stored chunk again (what ingest would have embedded),
        outside the transaction; the write then swaps the chunks in at once.
        """
        retitled = None
        current = await get_document(self._pool, document_id)
        if current is None:
            return None
        if title is not None and clean_title(title) != current.title:
            title = clean_title(title)
            chunks = [Chunk(row["text"], row["token_count"]) for row in await get_chunks(self._pool, document_id)]
            vectors = await self._embedder.embed_documents([embedding_input(title, chunk) for chunk in chunks])
            document = NewDocument(
                current.collection, title, "", current.source, current.metadata, current.content_sha256
            )
            retitled = ChunkedDocument(document, chunks, list(vectors))
        async with self._pool.acquire() as connection:
            updated = await update_document(connection, document_id, metadata=metadata, retitled=retitled)
        if retitled is not None:
            await self.merge_if_due()
        return updated
