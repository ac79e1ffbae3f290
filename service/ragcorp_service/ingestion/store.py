"""Documents and chunks in PostgreSQL, with the BM25 statistics kept in step.

Every write is one transaction: a document appears with all its chunks and its
share of the term statistics, or not at all. Identical content in the same
collection (by SHA-256 of the normalised text) is stored once; a second ingest
gets the first document back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import numpy as np
from pgvector import Vector

from ragcorp_service.ingestion.chunking import Chunk


@dataclass(frozen=True)
class NewDocument:
    collection: str
    title: str
    text: str
    source: str | None
    metadata: dict[str, Any]
    content_sha256: str


@dataclass(frozen=True)
class DocumentRecord:
    id: UUID
    collection: str
    title: str
    source: str | None
    content_sha256: str
    metadata: dict[str, Any]
    chunk_count: int
    created_at: datetime


_DOCUMENT_COLUMNS = "id, collection, title, source, content_sha256, metadata::text AS metadata, chunk_count, created_at"


def _record(row: asyncpg.Record) -> DocumentRecord:
    values = dict(row)
    values["metadata"] = json.loads(values["metadata"])
    return DocumentRecord(**values)


async def find_existing(
    connection: asyncpg.Connection | asyncpg.Pool, collection: str, hashes: list[str]
) -> dict[str, DocumentRecord]:
    rows = await connection.fetch(
        f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE collection = $1 AND content_sha256 = ANY($2::text[])",
        collection,
        hashes,
    )
    return {row["content_sha256"]: _record(row) for row in rows}


async def insert_document(
    connection: asyncpg.Connection, document: NewDocument, chunks: list[Chunk], embeddings: list[np.ndarray]
) -> tuple[DocumentRecord, bool]:
    """Store the document and its chunks; returns (record, created)."""
    async with connection.transaction():
        row = await connection.fetchrow(
            f"""
            INSERT INTO documents (collection, title, source, content_sha256, metadata, chunk_count)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6)
            ON CONFLICT (collection, content_sha256) DO NOTHING
            RETURNING {_DOCUMENT_COLUMNS}
            """,
            document.collection,
            document.title,
            document.source,
            document.content_sha256,
            json.dumps(document.metadata),
            len(chunks),
        )
        if row is None:  # a concurrent ingest of the same content won the race
            existing = await find_existing(connection, document.collection, [document.content_sha256])
            return existing[document.content_sha256], False
        record = _record(row)
        await connection.execute(
            """
            INSERT INTO chunks (document_id, collection, ordinal, text, token_count, tsv, term_count, embedding)
            SELECT $1, $2, t.ordinal, t.text, t.token_count, v.tsv,
                   coalesce((SELECT sum(coalesce(array_length(u.positions, 1), 1)) FROM unnest(v.tsv) u), 0),
                   t.embedding
            FROM unnest($3::int[], $4::text[], $5::int[], $6::vector[]) AS t(ordinal, text, token_count, embedding)
            CROSS JOIN LATERAL (SELECT to_tsvector('english', $7 || E'\n' || t.text) AS tsv) v
            """,
            record.id,
            record.collection,
            list(range(len(chunks))),
            [chunk.text for chunk in chunks],
            [chunk.token_count for chunk in chunks],
            [Vector(embedding) for embedding in embeddings],  # objects, or asyncpg recurses into them
            document.title,
        )
        await connection.execute(
            """
            INSERT INTO chunk_terms (term, chunk_id, tf)
            SELECT u.lexeme, c.id, coalesce(array_length(u.positions, 1), 1)
            FROM chunks c, unnest(c.tsv) u WHERE c.document_id = $1
            """,
            record.id,
        )
        await _add_statistics(connection, record.id)
        return record, True


async def _add_statistics(connection: asyncpg.Connection, document_id: UUID) -> None:
    """Count a new document's chunks into the BM25 statistics.

    Terms are upserted in a fixed order so that concurrent ingests take row locks
    in the same order and cannot deadlock each other.
    """
    await connection.execute(
        """
        INSERT INTO term_stats AS ts (term, chunk_freq)
        SELECT u.lexeme, count(*) FROM chunks c, unnest(c.tsv) u
        WHERE c.document_id = $1 GROUP BY u.lexeme ORDER BY u.lexeme
        ON CONFLICT (term) DO UPDATE SET chunk_freq = ts.chunk_freq + EXCLUDED.chunk_freq
        """,
        document_id,
    )
    await connection.execute(
        """
        INSERT INTO corpus_stats AS cs (chunk_count, term_total)
        SELECT count(*), coalesce(sum(term_count), 0) FROM chunks WHERE document_id = $1
        ON CONFLICT (singleton) DO UPDATE SET
            chunk_count = cs.chunk_count + EXCLUDED.chunk_count,
            term_total = cs.term_total + EXCLUDED.term_total
        """,
        document_id,
    )


async def _remove_statistics(connection: asyncpg.Connection, document_id: UUID) -> None:
    """Take a document's chunks out of the BM25 statistics (before the chunks go)."""
    await connection.execute(
        """
        WITH counts AS (
            SELECT u.lexeme, count(*) AS n FROM chunks c, unnest(c.tsv) u
            WHERE c.document_id = $1 GROUP BY u.lexeme
        ), locked AS (
            SELECT ts.term, counts.n FROM term_stats ts JOIN counts ON counts.lexeme = ts.term
            ORDER BY ts.term FOR UPDATE OF ts
        ), updated AS (
            UPDATE term_stats ts SET chunk_freq = ts.chunk_freq - locked.n
            FROM locked WHERE ts.term = locked.term AND ts.chunk_freq > locked.n
            RETURNING ts.term
        )
        DELETE FROM term_stats ts USING locked
        WHERE ts.term = locked.term AND ts.term NOT IN (SELECT term FROM updated)
        """,
        document_id,
    )
    await connection.execute(
        """
        UPDATE corpus_stats SET
            chunk_count = chunk_count - d.chunks, term_total = term_total - d.terms
        FROM (SELECT count(*) AS chunks, coalesce(sum(term_count), 0) AS terms
              FROM chunks WHERE document_id = $1) d
        """,
        document_id,
    )


async def delete_document(connection: asyncpg.Connection, document_id: UUID) -> bool:
    async with connection.transaction():
        locked = await connection.fetchval("SELECT id FROM documents WHERE id = $1 FOR UPDATE", document_id)
        if locked is None:
            return False
        await _remove_statistics(connection, document_id)
        await connection.execute("DELETE FROM documents WHERE id = $1", document_id)
        return True


async def get_document(pool: asyncpg.Pool, document_id: UUID) -> DocumentRecord | None:
    row = await pool.fetchrow(f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE id = $1", document_id)
    return _record(row) if row else None


async def get_chunks(pool: asyncpg.Pool, document_id: UUID) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT id, ordinal, text, token_count FROM chunks WHERE document_id = $1 ORDER BY ordinal", document_id
    )
    return rows


async def list_documents(
    pool: asyncpg.Pool, *, collection: str | None, limit: int, offset: int
) -> tuple[list[DocumentRecord], int]:
    rows = await pool.fetch(
        f"""
        SELECT {_DOCUMENT_COLUMNS}, count(*) OVER () AS total FROM documents
        WHERE $1::text IS NULL OR collection = $1
        ORDER BY created_at DESC, id LIMIT $2 OFFSET $3
        """,
        collection,
        limit,
        offset,
    )
    if not rows:
        total = await pool.fetchval(
            "SELECT count(*) FROM documents WHERE $1::text IS NULL OR collection = $1", collection
        )
        return [], int(total)
    total = rows[0]["total"]
    return [_record({k: v for k, v in row.items() if k != "total"}) for row in rows], int(total)  # type: ignore[arg-type]
