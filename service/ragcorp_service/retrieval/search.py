"""The three retrieval modes against PostgreSQL.

`vector` is an HNSW scan in cosine distance; `keyword` is BM25 over the posting
list (`keyword.py`); `hybrid` runs the two lists at once on two connections
and fuses their chunk ids with reciprocal rank fusion, then reads the fused top
k's rows (not every candidate's). Filters (collection, metadata
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
from ragcorp_service.retrieval.results import RetrievedChunk, row_to_chunk, scored_chunks

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


async def _nearest(
    connection: asyncpg.Connection, embedding: np.ndarray, request: SearchRequest, limit: int, sql: str
) -> list[asyncpg.Record]:
    """`sql` (its {where} filled with the request's filters; $1 the embedding, $2 the limit) run with
    the HNSW scan sized to `limit` and iterating until a filter leaves `limit` rows."""
    where, params = filter_sql(request, 3)
    async with connection.transaction(readonly=True):
        await connection.execute(f"SET LOCAL hnsw.ef_search = {max(40, min(limit, 1000))}")
        await connection.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        rows: list[asyncpg.Record] = await connection.fetch(
            sql.format(where=where or "true"), embedding, limit, *params
        )
    return rows


_NEAREST_CHUNKS = """
    SELECT c.id, c.document_id, d.title, c.text, c.collection, d.metadata::text AS metadata, 1 - c.distance AS score
    FROM (SELECT c.id, c.document_id, c.text, c.collection, c.embedding <=> $1 AS distance
          FROM chunks c WHERE {where} ORDER BY distance LIMIT $2) c
    JOIN documents d ON d.id = c.document_id
    ORDER BY c.distance, c.id
"""

_NEAREST_IDS = """
    SELECT c.id FROM (SELECT c.id, c.embedding <=> $1 AS distance
                      FROM chunks c WHERE {where} ORDER BY distance LIMIT $2) c
    ORDER BY c.distance, c.id
"""


async def vector_search(
    connection: asyncpg.Connection, embedding: np.ndarray, request: SearchRequest, limit: int
) -> list[RetrievedChunk]:
    rows = await _nearest(connection, embedding, request, limit, _NEAREST_CHUNKS)
    return [row_to_chunk(row) for row in rows]


async def keyword_search(
    connection: asyncpg.Connection, request: SearchRequest, limit: int, cache: BlockCache | None = None
) -> list[RetrievedChunk]:
    """BM25 (k1=1.2, b=0.75), exact; how it stays fast is `keyword.keyword_ranking`'s business."""
    return (await keyword_ranking(connection, request, limit, cache=cache)).chunks


async def _hybrid_lists(
    dense: asyncpg.Connection,
    sparse: asyncpg.Connection,
    embedding: np.ndarray,
    request: SearchRequest,
    depth: int,
    cache: BlockCache | None,
) -> list[list[int]]:
    """Each list's chunk ids, best first: on two connections at once, or in turn on one."""
    nearest = _nearest(dense, embedding, request, depth, _NEAREST_IDS)
    keyword = keyword_ranking(sparse, request, depth, cache=cache, with_rows=False)
    if dense is sparse:
        rows, ranking = await nearest, await keyword
    else:
        rows, ranking = await asyncio.gather(nearest, keyword)
    return [[row["id"] for row in rows], [chunk_id for chunk_id, _ in ranking.ranked]]


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
    async with _connections(reader) as (dense, sparse):
        lists = await _hybrid_lists(dense, sparse, query_embedding, request, depth, reader.block_cache)
        fused = reciprocal_rank_fusion(lists, k=tuning.rrf_k, limit=request.top_k)
        return await scored_chunks(dense, [chunk_id for chunk_id, _ in fused], [score for _, score in fused])


@asynccontextmanager
async def _connections(reader: ReadPool) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    """Two connections for hybrid's two lists; one twice when the pool has one (the lists take turns)."""
    if reader.pool.get_max_size() < 2:
        async with reader.pool.acquire() as connection:
            yield connection, connection
    else:
        async with reader.pair() as pair:
            yield pair
