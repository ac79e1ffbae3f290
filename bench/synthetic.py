"""A synthetic corpus grown to 100k chunks from SciFact's own chunks, written through the
service's store (the same INSERTs, posting list and statistics as an ingest), embedding aside.

Each synthetic chunk mixes the sentences of two real chunks and gets their blended, jittered
embedding, so the vectors and the vocabulary keep SciFact's distribution (random vectors
would make HNSW's job unrealistically hard, repeated ones unrealistically easy).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np

from ragcorp_service.ingestion.bulk import bulk_import
from ragcorp_service.ingestion.chunking import Chunk
from ragcorp_service.ingestion.pipeline import content_hash
from ragcorp_service.ingestion.postings import merge
from ragcorp_service.ingestion.store import ChunkedDocument, NewDocument, insert_documents

COLLECTION = "synthetic"
CHUNKS_PER_DOCUMENT = 8
DOCUMENTS_PER_WRITE = 64  # one insert_documents call, as one ingest request of 64 documents makes
MERGE_EVERY_CHUNKS = 4096  # the tail moved into posting blocks this often (its time counts as writing)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


async def chunk_count(connection: asyncpg.Connection) -> int:
    return int(await connection.fetchval("SELECT count(*) FROM chunks"))


async def grow_to(database_url: str, target: int, seed: int = 7) -> dict[str, Any]:
    """Add synthetic chunks until the database holds `target`, as `ragcorp-service import` would (the
    vector index built once at the end); returns the time it took and the write throughput."""
    connection = await _connect(database_url)
    try:
        present = await chunk_count(connection)
        if present >= target:
            return {"chunks": present, "added": 0}
        source = await _Source.read(connection, seed, present)
        report = await bulk_import(connection, _batches(source, target - present, ordinal=present))
        await connection.execute("VACUUM ANALYZE")  # the steady state autovacuum reaches: measured there
        return {
            "chunks": await chunk_count(connection),
            "added": report.chunks,
            "write_chunks_per_s": round(report.chunks / report.seconds_writing, 1),
            "writing_seconds": round(report.seconds_writing),
            "vector_index_seconds": round(report.seconds_index),
        }
    finally:
        await connection.close()


async def _batches(source: _Source, chunks: int, ordinal: int) -> AsyncIterator[list[ChunkedDocument]]:
    added = 0
    while added < chunks:
        batch: list[ChunkedDocument] = []
        while added < chunks and len(batch) < DOCUMENTS_PER_WRITE:
            n = min(CHUNKS_PER_DOCUMENT, chunks - added)
            batch.append(_document(source, n, ordinal=ordinal + added))
            added += n
        yield batch


async def store_rate(database_url: str, chunks: int = 4096) -> dict[str, Any]:
    """The store path's chunks/s at the database's present size: `chunks` written, then rolled back."""
    connection = await _connect(database_url)
    try:
        present = await chunk_count(connection)
        source = await _Source.read(connection, seed=99, offset=present)
        transaction = connection.transaction()
        await transaction.start()
        try:
            added, storing = await _write(connection, source, chunks, ordinal=present)
        finally:
            await transaction.rollback()
        return {"at_chunks": present, "written": added, "chunks_per_s": round(added / storing, 1)}
    finally:
        await connection.close()


async def sizes(database_url: str) -> dict[str, str]:
    """On-disk size of the database and of each table and index that grows with the corpus."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            """
            SELECT c.relname, pg_size_pretty(pg_relation_size(c.oid)) AS size FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') AND pg_relation_size(c.oid) > 10 * 1024 * 1024
            ORDER BY pg_relation_size(c.oid) DESC
            """
        )
        total = await connection.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
        return {"database": total, **{row["relname"]: row["size"] for row in rows}}
    finally:
        await connection.close()


async def _connect(database_url: str) -> asyncpg.Connection:
    from pgvector.asyncpg import register_vector

    connection = await asyncpg.connect(database_url)
    await register_vector(connection)
    return connection


@dataclass(frozen=True)
class _Source:
    """SciFact's own chunks, which synthetic ones are mixed from."""

    texts: list[str]
    tokens: np.ndarray
    vectors: np.ndarray
    rng: np.random.Generator

    @classmethod
    async def read(cls, connection: asyncpg.Connection, seed: int, offset: int) -> _Source:
        rows = await connection.fetch("SELECT text, token_count, embedding FROM chunks WHERE collection = 'scifact'")
        return cls(
            texts=[r["text"] for r in rows],
            tokens=np.array([r["token_count"] for r in rows]),
            vectors=np.stack([np.asarray(r["embedding"].to_numpy(), dtype=np.float32) for r in rows]),
            rng=np.random.default_rng([seed, offset]),  # a grown copy grows on with new text, not the same again
        )


async def _write(connection: asyncpg.Connection, source: _Source, chunks: int, ordinal: int) -> tuple[int, float]:
    """(chunks added, seconds in insert_documents and merges): the store path alone, generating them aside."""
    added, storing, unmerged = 0, 0.0, 0
    while added < chunks:
        batch: list[ChunkedDocument] = []
        while added < chunks and len(batch) < DOCUMENTS_PER_WRITE:
            n = min(CHUNKS_PER_DOCUMENT, chunks - added)
            batch.append(_document(source, n, ordinal=ordinal + added))
            added, unmerged = added + n, unmerged + n
        started = time.perf_counter()
        await insert_documents(connection, batch)
        if unmerged >= MERGE_EVERY_CHUNKS or added >= chunks:
            await merge(connection)
            unmerged = 0
        storing += time.perf_counter() - started
    return added, storing


def _document(source: _Source, n: int, ordinal: int) -> ChunkedDocument:
    rng, texts, tokens, vectors = source.rng, source.texts, source.tokens, source.vectors
    picks = rng.integers(0, len(texts), size=(n, 2))
    chunks, embeddings = [], []
    for a, b in picks:
        sentences = _SENTENCE.split(texts[a]) + _SENTENCE.split(texts[b])[:2]
        rng.shuffle(sentences)
        chunks.append(Chunk(" ".join(sentences), int(tokens[a] + tokens[b] // 3)))
        blended = vectors[a] + 0.5 * vectors[b] + np.asarray(rng.normal(0, 0.02, vectors.shape[1]), dtype=np.float32)
        embeddings.append(blended / np.linalg.norm(blended))
    body = "\n\n".join(c.text for c in chunks)
    document = NewDocument(
        collection=COLLECTION,
        title=f"Synthetic {ordinal}",
        text=body,
        source=None,
        metadata={"synthetic": True},
        content_sha256=content_hash(f"{ordinal}:{body}"),
    )
    return ChunkedDocument(document, chunks, embeddings)
