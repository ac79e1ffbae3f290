"""The three retrieval modes against PostgreSQL.

`vector` is an HNSW scan in cosine distance; `keyword` is BM25 computed in SQL
from the term statistics kept by ingestion; `hybrid` fuses the two with
reciprocal rank fusion. Filters (collection, metadata containment) apply inside
each list, and HNSW's iterative scan keeps a filtered vector search returning a
full list instead of whatever survived the first `ef_search` candidates.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg
import numpy as np

from ragcorp_service.retrieval.fusion import reciprocal_rank_fusion
from ragcorp_service.retrieval.results import RetrievedChunk

Mode = Literal["hybrid", "vector", "keyword"]
BM25_K1 = 1.2
BM25_B = 0.75
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class SearchRequest:
    query: str
    top_k: int = 5
    mode: Mode = "hybrid"
    collection: str | None = None
    filters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchTuning:
    """Depth of each list before fusion, and the RRF constant."""

    candidates: int = 100
    rrf_k: int = 60


def _filter_sql(request: SearchRequest, first_param: int) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if request.collection is not None:
        params.append(request.collection)
        clauses.append(f"c.collection = ${first_param + len(params) - 1}")
    if request.filters:
        params.append(json.dumps(request.filters))
        clauses.append(
            f"c.document_id IN (SELECT id FROM documents WHERE metadata @> ${first_param + len(params) - 1}::jsonb)"
        )
    return (" AND ".join(clauses) or "true"), params


def _row_to_chunk(row: asyncpg.Record) -> RetrievedChunk:
    return RetrievedChunk(
        chunk_id=row["id"],
        document_id=row["document_id"],
        title=row["title"],
        text=row["text"],
        score=float(row["score"]),
        collection=row["collection"],
        metadata=json.loads(row["metadata"]),
    )


async def vector_search(
    connection: asyncpg.Connection, embedding: np.ndarray, request: SearchRequest, limit: int
) -> list[RetrievedChunk]:
    where, params = _filter_sql(request, 3)
    async with connection.transaction(readonly=True):
        await connection.execute(f"SET LOCAL hnsw.ef_search = {max(40, min(limit, 1000))}")
        await connection.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        rows = await connection.fetch(
            f"""
            SELECT c.id, c.document_id, d.title, c.text, c.collection, d.metadata::text AS metadata,
                   1 - c.distance AS score
            FROM (SELECT c.id, c.document_id, c.text, c.collection, c.embedding <=> $1 AS distance
                  FROM chunks c WHERE {where} ORDER BY distance LIMIT $2) c
            JOIN documents d ON d.id = c.document_id
            ORDER BY c.distance, c.id
            """,
            embedding,
            limit,
            *params,
        )
    return [_row_to_chunk(row) for row in rows]


async def keyword_search(connection: asyncpg.Connection, request: SearchRequest, limit: int) -> list[RetrievedChunk]:
    """BM25 (k1=1.2, b=0.75) over chunks containing any query term, read from the posting list."""
    if not _WORD.search(request.query):  # only punctuation: nothing to match
        return []
    where, params = _filter_sql(request, 3)
    rows = await connection.fetch(
        f"""
        WITH stats AS (
            SELECT chunk_count, term_total::float8 / greatest(chunk_count, 1) AS avgdl FROM corpus_stats
        ), terms AS (
            SELECT t.term, ln(1 + (s.chunk_count - ts.chunk_freq + 0.5) / (ts.chunk_freq + 0.5)) AS idf
            FROM unnest(tsvector_to_array(to_tsvector('english', $1))) AS t(term)
            JOIN term_stats ts ON ts.term = t.term CROSS JOIN stats s
        ), scored AS (
            SELECT ct.chunk_id, sum(
                terms.idf * (ct.tf * ({BM25_K1} + 1))
                / (ct.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * c.term_count / s.avgdl))
            ) AS score
            FROM terms
            JOIN chunk_terms ct ON ct.term = terms.term
            JOIN chunks c ON c.id = ct.chunk_id
            CROSS JOIN stats s
            WHERE {where}
            GROUP BY ct.chunk_id
            ORDER BY score DESC, ct.chunk_id
            LIMIT $2
        )
        SELECT c.id, c.document_id, d.title, c.text, c.collection, d.metadata::text AS metadata, scored.score
        FROM scored JOIN chunks c ON c.id = scored.chunk_id JOIN documents d ON d.id = c.document_id
        ORDER BY scored.score DESC, c.id
        """,
        request.query,
        limit,
        *params,
    )
    return [_row_to_chunk(row) for row in rows]


async def search(
    pool: asyncpg.Pool,
    request: SearchRequest,
    query_embedding: np.ndarray | None,
    tuning: SearchTuning = SearchTuning(),
) -> list[RetrievedChunk]:
    """Run the request's mode; `query_embedding` is required unless the mode is keyword."""
    if request.mode == "keyword":
        async with pool.acquire() as connection:
            return await keyword_search(connection, request, request.top_k)
    assert query_embedding is not None
    if request.mode == "vector":
        async with pool.acquire() as connection:
            return await vector_search(connection, query_embedding, request, request.top_k)
    depth = max(tuning.candidates, request.top_k)
    # One connection for both lists: taking two per request could deadlock a busy pool.
    async with pool.acquire() as connection:
        dense_ranking = await vector_search(connection, query_embedding, request, depth)
        sparse_ranking = await keyword_search(connection, request, depth)
    return reciprocal_rank_fusion([dense_ranking, sparse_ranking], k=tuning.rrf_k, limit=request.top_k)
