"""The three retrieval modes against PostgreSQL.

`vector` is an HNSW scan in cosine distance; `keyword` is BM25 over the posting
list (`keyword.py`); `hybrid` runs the two lists at once on two connections
and fuses them with reciprocal rank fusion. Filters (collection, metadata
containment) apply inside each list, and HNSW's iterative scan keeps a filtered
vector search returning a full list instead of whatever survived the first
`ef_search` candidates.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import numpy as np

from ragcorp_service.retrieval.block_cache import BlockCache
from ragcorp_service.retrieval.fusion import reciprocal_rank_fusion
from ragcorp_service.retrieval.keyword import keyword_ranking
from ragcorp_service.retrieval.request import Mode, SearchRequest, filter_sql
from ragcorp_service.retrieval.results import RetrievedChunk, row_to_chunk

__all__ = ["Mode", "ReadPool", "SearchRequest", "SearchTuning", "keyword_search", "search", "vector_search"]


@dataclass(frozen=True)
class SearchTuning:
    """Depth of each list before fusion, and the RRF constant."""

    candidates: int = 100
    rrf_k: int = 60


class ReadPool:
    """The pool searches read from (a replica's when DATABASE_READ_URL is set), handing out pairs safely.

    A hybrid search holds two connections at once. Taken one at a time, a burst
    of hybrid searches could each hold one and wait forever for a second; taking
    both under one lock means whoever waits holds nothing, and whoever holds a
    connection waits for nothing but the database.
    """

    def __init__(self, pool: asyncpg.Pool, block_cache: BlockCache | None = None) -> None:
        self.pool = pool
        self.block_cache = block_cache  # decoded posting lists keyword queries share (block_cache.py)
        self._pairing = asyncio.Lock()

    @asynccontextmanager
    async def pair(self) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
        async with self._pairing:
            first = await self.pool.acquire()
            try:
                second = await self.pool.acquire()
            except BaseException:
                await self.pool.release(first)
                raise
        try:
            yield first, second
        finally:
            await self.pool.release(second)
            await self.pool.release(first)


async def vector_search(
    connection: asyncpg.Connection, embedding: np.ndarray, request: SearchRequest, limit: int
) -> list[RetrievedChunk]:
    where, params = filter_sql(request, 3)
    async with connection.transaction(readonly=True):
        await connection.execute(f"SET LOCAL hnsw.ef_search = {max(40, min(limit, 1000))}")
        await connection.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        rows = await connection.fetch(
            f"""
            SELECT c.id, c.document_id, d.title, c.text, c.collection, d.metadata::text AS metadata,
                   1 - c.distance AS score
            FROM (SELECT c.id, c.document_id, c.text, c.collection, c.embedding <=> $1 AS distance
                  FROM chunks c WHERE {where or "true"} ORDER BY distance LIMIT $2) c
            JOIN documents d ON d.id = c.document_id
            ORDER BY c.distance, c.id
            """,
            embedding,
            limit,
            *params,
        )
    return [row_to_chunk(row) for row in rows]


async def keyword_search(
    connection: asyncpg.Connection, request: SearchRequest, limit: int, cache: BlockCache | None = None
) -> list[RetrievedChunk]:
    """BM25 (k1=1.2, b=0.75), exact; how it stays fast is `keyword.keyword_ranking`'s business."""
    return (await keyword_ranking(connection, request, limit, cache=cache)).chunks


async def search(
    reader: ReadPool,
    request: SearchRequest,
    query_embedding: np.ndarray | None,
    tuning: SearchTuning = SearchTuning(),
) -> list[RetrievedChunk]:
    """Run the request's mode; `query_embedding` is required unless the mode is keyword."""
    if request.mode == "keyword":
        async with reader.pool.acquire() as connection:
            return await keyword_search(connection, request, request.top_k, reader.block_cache)
    assert query_embedding is not None
    if request.mode == "vector":
        async with reader.pool.acquire() as connection:
            return await vector_search(connection, query_embedding, request, request.top_k)
    depth = max(tuning.candidates, request.top_k)
    if reader.pool.get_max_size() < 2:  # a pool of one: the lists take turns
        async with reader.pool.acquire() as connection:
            dense_ranking = await vector_search(connection, query_embedding, request, depth)
            sparse_ranking = await keyword_search(connection, request, depth, reader.block_cache)
    else:
        async with reader.pair() as (dense, sparse):
            dense_ranking, sparse_ranking = await asyncio.gather(
                vector_search(dense, query_embedding, request, depth),
                keyword_search(sparse, request, depth, reader.block_cache),
            )
    return reciprocal_rank_fusion([dense_ranking, sparse_ranking], k=tuning.rrf_k, limit=request.top_k)
