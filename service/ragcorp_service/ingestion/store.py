"""Documents and chunks in PostgreSQL, with the BM25 statistics kept in step.

Every write is one transaction: a batch of documents appears with all its
chunks, postings and share of the term statistics, or not at all. Identical content in the same
collection (by SHA-256 of the normalised text) is stored once; a second ingest
gets the first document back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import numpy as np
from pgvector import Vector

from ragcorp_service.db.retry import retrying
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


@dataclass(frozen=True)
class ChunkedDocument:
    """A document ready to store: its chunks and one embedding per chunk."""

    document: NewDocument
    chunks: list[Chunk]
    embeddings: list[np.ndarray]


# While the corpus is this small, a write that moves the mean chunk length more than
# REFERENCE_DRIFT away from the reference re-weights every posting (cheap at this size);
# past it the reference stays, and keyword search scales its bounds for the drift.
REFERENCE_MAX_CHUNKS = 5000
REFERENCE_DRIFT = 0.1


async def insert_documents(
    connection: asyncpg.Connection, batch: Sequence[ChunkedDocument], *, tail: bool = True
) -> list[tuple[DocumentRecord, bool]]:
    """See `_insert_documents_once`; a deadlock victim is run again (`db.retry`).

    With `tail` False the new chunks' postings are not written to the tail: the caller merges them
    into blocks in the same transaction (`merge_postings(documents)`, the bulk import's way).
    """
    return await retrying(lambda: _insert_documents_once(connection, batch, tail))


async def _insert_documents_once(
    connection: asyncpg.Connection, batch: Sequence[ChunkedDocument], tail: bool = True
) -> list[tuple[DocumentRecord, bool]]:
    """Store a batch in one transaction; returns (record, created) per document, in order.

    Each statement covers the whole batch (documents, chunks, postings, then the
    statistics once): at 100k chunks, statements per document wrote 116 chunks/s,
    batches of 64 documents 265 (`make bench`). Content already stored in the
    collection (by a concurrent ingest, too, or earlier in the batch) is returned,
    not stored again.
    """
    async with connection.transaction():
        rows = await connection.fetch(
            f"""
            INSERT INTO documents (collection, title, source, content_sha256, metadata, chunk_count)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::int[])
            ON CONFLICT (collection, content_sha256) DO NOTHING
            RETURNING {_DOCUMENT_COLUMNS}
            """,
            [item.document.collection for item in batch],
            [item.document.title for item in batch],
            [item.document.source for item in batch],
            [item.document.content_sha256 for item in batch],
            [json.dumps(item.document.metadata) for item in batch],
            [len(item.chunks) for item in batch],
        )
        created = {(record.collection, record.content_sha256): record for record in map(_record, rows)}
        new: dict[tuple[str, str], ChunkedDocument] = {}
        for item in batch:
            if _key(item) in created:
                new.setdefault(_key(item), item)  # the same content twice in a batch is stored once
        if new:
            await _insert_chunks(connection, [(created[key], item) for key, item in new.items()])
            await _add_postings_and_statistics(connection, [created[key].id for key in new], tail=tail)
        results: list[tuple[DocumentRecord, bool]] = []
        for item in batch:
            if (record := created.pop(_key(item), None)) is not None:
                results.append((record, True))
            else:  # stored before, or earlier in this batch, or by a concurrent ingest that won the race
                existing = await find_existing(connection, item.document.collection, [item.document.content_sha256])
                results.append((existing[item.document.content_sha256], False))
        return results


def _key(item: ChunkedDocument) -> tuple[str, str]:
    return item.document.collection, item.document.content_sha256


#: How a chunk is indexed for keywords: its document's title and its own text (SQL, given the two).
_CHUNK_TSV = "to_tsvector('english', {title} || E'\\n' || {text})"
#: Its length in terms, for BM25: every position of every lexeme (SQL, given the tsvector).
_TERM_COUNT = "coalesce((SELECT sum(coalesce(array_length(u.positions, 1), 1)) FROM unnest({tsv}) u), 0)"


async def _insert_chunks(connection: asyncpg.Connection, batch: list[tuple[DocumentRecord, ChunkedDocument]]) -> None:
    await connection.execute(
        f"""
        INSERT INTO chunks (document_id, collection, ordinal, text, token_count, tsv, term_count, embedding)
        SELECT t.document_id, t.collection, t.ordinal, t.text, t.token_count, v.tsv,
               {_TERM_COUNT.format(tsv="v.tsv")}, t.embedding
        FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::int[], $6::vector[], $7::text[])
             AS t(document_id, collection, ordinal, text, token_count, embedding, title)
        CROSS JOIN LATERAL (SELECT {_CHUNK_TSV.format(title="t.title", text="t.text")} AS tsv) v
        """,
        [record.id for record, item in batch for _ in item.chunks],
        [record.collection for record, item in batch for _ in item.chunks],
        [ordinal for _, item in batch for ordinal in range(len(item.chunks))],
        [chunk.text for _, item in batch for chunk in item.chunks],
        [chunk.token_count for _, item in batch for chunk in item.chunks],
        # Vector objects, or asyncpg recurses into the arrays
        [Vector(embedding) for _, item in batch for embedding in item.embeddings],
        [item.document.title for _, item in batch for _ in item.chunks],
    )


async def _add_postings_and_statistics(
    connection: asyncpg.Connection, document_ids: list[UUID], removed: tuple[int, int] = (0, 0), tail: bool = True
) -> None:
    """Write the new chunks' postings and count them into the BM25 statistics.

    Postings are weighted against the reference length read without a lock; the
    reference is then re-read under the statistics row lock, and this batch's
    postings re-weighted if a concurrent write moved it meanwhile, so every
    committed posting agrees with the committed reference. Term rows are upserted
    in a fixed order, then the corpus row, as deletes do, so concurrent writes
    take locks in the same order and cannot deadlock.
    """
    batch = await connection.fetchrow(
        "SELECT count(*) AS chunks, coalesce(sum(term_count), 0) AS terms FROM chunks WHERE document_id = ANY($1)",
        document_ids,
    )
    stored_reference = await connection.fetchval("SELECT reference_avgdl FROM corpus_stats")
    reference = stored_reference or max(batch["terms"], 1) / max(batch["chunks"], 1)
    if tail:  # else the caller merges them into blocks straight from the chunks
        await connection.execute(
            """
            INSERT INTO chunk_terms (term, chunk_id, tf, chunk_len, weight)
            SELECT u.lexeme, c.id, p.tf, c.term_count, bm25_weight(p.tf, c.term_count, $2)
            FROM chunks c, unnest(c.tsv) u, LATERAL (SELECT coalesce(array_length(u.positions, 1), 1) AS tf) p
            WHERE c.document_id = ANY($1)
            """,
            document_ids,
            reference,
        )
    await connection.execute(
        """
        INSERT INTO term_stats AS ts (term, chunk_freq)
        SELECT u.lexeme, count(*) FROM chunks c, unnest(c.tsv) u
        WHERE c.document_id = ANY($1) GROUP BY u.lexeme ORDER BY u.lexeme
        ON CONFLICT (term) DO UPDATE SET chunk_freq = ts.chunk_freq + EXCLUDED.chunk_freq
        """,
        document_ids,
    )
    corpus = await connection.fetchrow("SELECT chunk_count, term_total, reference_avgdl FROM corpus_stats FOR UPDATE")
    chunk_count = corpus["chunk_count"] + batch["chunks"] - removed[0]
    term_total = corpus["term_total"] + batch["terms"] - removed[1]
    current = corpus["reference_avgdl"] or reference
    avgdl = term_total / max(chunk_count, 1)
    if chunk_count <= REFERENCE_MAX_CHUNKS and term_total and abs(avgdl / current - 1) > REFERENCE_DRIFT:
        current = avgdl
        await connection.execute("UPDATE chunk_terms SET weight = bm25_weight(tf, chunk_len, $1)", current)
    elif current != reference:
        await connection.execute(
            """
            UPDATE chunk_terms ct SET weight = bm25_weight(ct.tf, ct.chunk_len, $2)
            FROM chunks c WHERE c.document_id = ANY($1) AND ct.chunk_id = c.id
            """,
            document_ids,
            current,
        )
    await connection.execute(
        "UPDATE corpus_stats SET chunk_count = $1, term_total = $2, reference_avgdl = $3",
        chunk_count,
        term_total,
        current,
    )


async def _remove_statistics(
    connection: asyncpg.Connection, document_id: UUID, *, update_corpus: bool = True
) -> tuple[int, int]:
    """Take a document's chunks out of the BM25 statistics (before the chunks go); returns the
    chunks and terms taken out. With `update_corpus` False the corpus row is left to the caller,
    who must take it last (a retitle adds its new terms first).

    The term rows are locked (sorted) by one statement, changed by the next: a statement's
    snapshot is older than the locks it waits for, so deciding "this term is now unused" in the
    statement that locked it once deleted the row a concurrent ingest had just counted into.
    """
    counts = await connection.fetch(
        """
        SELECT u.lexeme AS term, count(*) AS n FROM chunks c, unnest(c.tsv) u
        WHERE c.document_id = $1 GROUP BY u.lexeme
        """,
        document_id,
    )
    terms, ns = [row["term"] for row in counts], [row["n"] for row in counts]
    await connection.execute("SELECT term FROM term_stats WHERE term = ANY($1::text[]) ORDER BY term FOR UPDATE", terms)
    await connection.execute(
        """
        UPDATE term_stats ts SET chunk_freq = ts.chunk_freq - c.n
        FROM unnest($1::text[], $2::bigint[]) AS c(term, n) WHERE ts.term = c.term
        """,
        terms,
        ns,
    )
    await connection.execute("DELETE FROM term_stats WHERE term = ANY($1::text[]) AND chunk_freq <= 0", terms)
    removed = await connection.fetchrow(
        "SELECT count(*) AS chunks, coalesce(sum(term_count), 0) AS terms FROM chunks WHERE document_id = $1",
        document_id,
    )
    if update_corpus:
        await connection.execute(
            "UPDATE corpus_stats SET chunk_count = chunk_count - $1, term_total = term_total - $2",
            removed["chunks"],
            removed["terms"],
        )
    return int(removed["chunks"]), int(removed["terms"])


async def _retire_postings(connection: asyncpg.Connection, document_id: UUID) -> None:
    """Take a document's chunks' postings out of search: the tail's are deleted, and a chunk with
    none there has its postings in blocks, which a tombstone masks until the next merge drops them.

    One statement, tail first: a merge locks the tail against writers, so a writer never holds a
    tombstone a merge is waiting for (see `merge_postings` in migration 0005).
    """
    await connection.execute(
        """
        WITH tail AS (
            DELETE FROM chunk_terms WHERE chunk_id IN (SELECT id FROM chunks WHERE document_id = $1)
            RETURNING chunk_id
        )
        INSERT INTO posting_tombstones (chunk_id, terms)
        SELECT c.id, tsvector_to_array(c.tsv) FROM chunks c
        WHERE c.document_id = $1 AND c.id NOT IN (SELECT chunk_id FROM tail)
        ON CONFLICT (chunk_id) DO NOTHING
        """,
        document_id,
    )


async def update_document(
    connection: asyncpg.Connection,
    document_id: UUID,
    *,
    metadata: dict[str, Any] | None,
    retitled: ChunkedDocument | None,
) -> DocumentRecord | None:
    """See `_update_document_once`; a deadlock victim is run again (`db.retry`)."""
    return await retrying(lambda: _update_document_once(connection, document_id, metadata=metadata, retitled=retitled))


async def _update_document_once(
    connection: asyncpg.Connection,
    document_id: UUID,
    *,
    metadata: dict[str, Any] | None,
    retitled: ChunkedDocument | None,
) -> DocumentRecord | None:
    """Replace a document's metadata and/or title, in one transaction; None when it is gone.

    Metadata is read at query time (filters join `documents`), so it is one UPDATE. The title
    is part of what each chunk's embedding and keyword index saw, so `retitled` carries the
    chunks again with embeddings of the new title: each stored chunk takes its new embedding,
    keyword vector and postings in place, keeping its id (citations of earlier answers still
    resolve), and the BM25 statistics follow, as a delete and an ingest would.
    """
    async with connection.transaction():
        locked = await connection.fetchval("SELECT id FROM documents WHERE id = $1 FOR UPDATE", document_id)
        if locked is None:
            return None
        if metadata is not None:
            await connection.execute(
                "UPDATE documents SET metadata = $2::jsonb WHERE id = $1", document_id, json.dumps(metadata)
            )
        if retitled is not None:
            # The corpus row last, once, for the net change: taken before the new terms, it
            # waited in the opposite order to an ingest's (terms, then corpus) and deadlocked.
            removed = await _remove_statistics(connection, document_id, update_corpus=False)
            await _retire_postings(connection, document_id)
            await connection.execute(
                "UPDATE documents SET title = $2 WHERE id = $1", document_id, retitled.document.title
            )
            await _retitle_chunks(connection, document_id, retitled)
            await _add_postings_and_statistics(connection, [document_id], removed)
        row = await connection.fetchrow(f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE id = $1", document_id)
        return _record(row)


async def _retitle_chunks(connection: asyncpg.Connection, document_id: UUID, retitled: ChunkedDocument) -> None:
    """Each chunk's keyword vector and embedding from the new title, matched by ordinal (the text stays)."""
    updated = await connection.execute(
        f"""
        WITH fresh AS (
            SELECT c.id, v.tsv, t.embedding
            FROM chunks c
            JOIN unnest($2::int[], $3::vector[]) AS t(ordinal, embedding) ON t.ordinal = c.ordinal
            CROSS JOIN LATERAL (SELECT {_CHUNK_TSV.format(title="$4", text="c.text")} AS tsv) v
            WHERE c.document_id = $1
        )
        UPDATE chunks c SET
            tsv = fresh.tsv, term_count = {_TERM_COUNT.format(tsv="fresh.tsv")}, embedding = fresh.embedding
        FROM fresh WHERE c.id = fresh.id
        """,
        document_id,
        list(range(len(retitled.chunks))),
        [Vector(embedding) for embedding in retitled.embeddings],
        retitled.document.title,
    )
    if updated != f"UPDATE {len(retitled.chunks)}":
        raise RuntimeError(f"document {document_id} has other chunks than were re-embedded ({updated})")


async def delete_document(connection: asyncpg.Connection, document_id: UUID) -> bool:
    """Remove a document, its chunks and their statistics; False when there is none. A deadlock
    victim is run again (`db.retry`)."""
    return await retrying(lambda: _delete_document_once(connection, document_id))


async def _delete_document_once(connection: asyncpg.Connection, document_id: UUID) -> bool:
    async with connection.transaction():
        locked = await connection.fetchval("SELECT id FROM documents WHERE id = $1 FOR UPDATE", document_id)
        if locked is None:
            return False
        await _remove_statistics(connection, document_id)
        await _retire_postings(connection, document_id)
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


def _listed(collection: int, allowed: int) -> str:
    """The listing's condition, on the parameters numbered `collection` and `allowed`."""
    return (
        f"(${collection}::text IS NULL OR collection = ${collection})"
        f" AND (${allowed}::text[] IS NULL OR collection = ANY(${allowed}))"
    )


async def list_documents(
    pool: asyncpg.Pool,
    *,
    collection: str | None,
    limit: int,
    offset: int,
    allowed_collections: frozenset[str] | None = None,
) -> tuple[list[DocumentRecord], int]:
    """Newest first; `allowed_collections` (an API key's) bounds what any listing shows."""
    allowed = sorted(allowed_collections) if allowed_collections is not None else None
    rows = await pool.fetch(
        f"""
        SELECT {_DOCUMENT_COLUMNS}, count(*) OVER () AS total FROM documents
        WHERE {_listed(1, 4)} ORDER BY created_at DESC, id LIMIT $2 OFFSET $3
        """,
        collection,
        limit,
        offset,
        allowed,
    )
    if not rows:
        total = await pool.fetchval(f"SELECT count(*) FROM documents WHERE {_listed(1, 2)}", collection, allowed)
        return [], int(total)
    total = rows[0]["total"]
    return [_record({k: v for k, v in row.items() if k != "total"}) for row in rows], int(total)  # type: ignore[arg-type]
