"""Search latency: end to end over HTTP (one client, then 16), and the database's part alone
(the same retrieval code with the query already embedded), plus the plans PostgreSQL chose."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Sequence
from dataclasses import asdict
from typing import Any

import asyncpg
import httpx
import numpy as np

from bench.service import service_block_cache
from bench.stats import Latency, load
from ragcorp_service.providers.embedders import LocalEmbedder
from ragcorp_service.retrieval.keyword import KeywordRanking, full_keyword_ranking, keyword_ranking
from ragcorp_service.retrieval.results import RetrievedChunk
from ragcorp_service.retrieval.search import ReadPool, SearchRequest, keyword_search, search, vector_search

MODES = ("hybrid", "vector", "keyword")


#: The collection filtered searches ask for: SciFact's own chunks, all of the small corpus and about a
#: tenth of the large one (applications search one collection: measured as they run).
FILTER = "scifact"


async def over_http(url: str, queries: Sequence[str], seconds: float) -> dict[str, Any]:
    """Each mode with one client and 16, then filtered to FILTER with one."""
    report: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=32)) as client:
        for mode in MODES:
            for clients, collection in ((1, None), (16, None), (1, FILTER)):

                async def one(i: int, mode: str = mode, collection: str | None = collection) -> None:
                    body = {"query": queries[i % len(queries)], "mode": mode, "top_k": 10}
                    if collection is not None:
                        body["collection"] = collection
                    (await client.post("/v1/search", json=body)).raise_for_status()

                label = f"{mode}+collection" if collection else mode
                report[f"{label}/{clients}"] = (await load(one, clients=clients, seconds=seconds)).__dict__
    return report


async def in_database(
    database_url: str, queries: Sequence[str], vectors: Sequence[np.ndarray], seconds: float
) -> dict[str, Any]:
    """One client calling the service's own retrieval function with precomputed query vectors,
    unfiltered and filtered to FILTER."""
    cache, warmed = await service_block_cache(database_url)
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=2, init=_register_vector)
    reader = ReadPool(pool, cache)
    try:
        report: dict[str, Any] = {"cache_warmed": asdict(warmed)}
        for mode in MODES:
            for collection in (None, FILTER):

                async def one(i: int, mode: str = mode, collection: str | None = collection) -> None:
                    request = SearchRequest(
                        query=queries[i % len(queries)],
                        top_k=10,
                        mode=mode,  # type: ignore[arg-type]
                        collection=collection,
                    )
                    await search(reader, request, vectors[i % len(vectors)])

                label = f"{mode}+collection" if collection else mode
                report[label] = (await load(one, clients=1, seconds=seconds)).__dict__
        return report
    finally:
        await pool.close()


async def _register_vector(connection: asyncpg.Connection) -> None:
    from pgvector.asyncpg import register_vector

    await register_vector(connection)


async def keyword_against_full(
    database_url: str,
    queries: Sequence[str],
    limits: Sequence[int] = (10, 100),
    filtered: bool = True,
    in_sql: int = 50,
) -> dict[str, Any]:
    """Block-max keyword rankings against every block read, on the same queries, and against the full
    query in SQL (every live posting decoded and summed there: independent, and slow: `in_sql` queries)
    — identical, how fast, and how many of the query terms' blocks were read.

    top 10 is what keyword mode asks for; top 100 is the keyword list hybrid fuses; `filtered` adds
    top 10 in FILTER's collection.
    """
    cache, _ = await service_block_cache(database_url)  # the default path as the service runs it, cache included
    connection = await asyncpg.connect(database_url)
    try:
        report: dict[str, Any] = {}
        cases = [(limit, None) for limit in limits] + ([(limits[0], FILTER)] if filtered else [])
        for limit, collection in cases:
            identical, identical_sql, blocks_read, blocks, rounds, snapshots = 0, 0, 0, 0, 0, 0
            timings: dict[str, list[float]] = {"block_max": [], "every_block": [], "sql": []}
            for n, query in enumerate(queries):
                request = SearchRequest(query=query, top_k=limit, mode="keyword", collection=collection)
                fast = await _timed(timings["block_max"], keyword_ranking(connection, request, limit, cache=cache))
                every = await _timed(
                    timings["every_block"], keyword_ranking(connection, request, limit, one_pass_postings=2**62)
                )
                identical += same_ranking(fast.chunks, every.chunks)
                if n < in_sql:
                    sql = await _timed(timings["sql"], full_keyword_ranking(connection, request, limit))
                    identical_sql += same_ranking(fast.chunks, sql.chunks)
                blocks_read, blocks = blocks_read + fast.blocks_read, blocks + fast.blocks
                rounds, snapshots = rounds + fast.rounds, snapshots + fast.in_snapshot
            report[f"top{limit}" + ("+collection" if collection else "")] = {
                "queries": len(queries),
                "identical": identical,
                "queries_in_sql": min(in_sql, len(queries)),
                "identical_in_sql": identical_sql,
                "blocks_read_share": round(blocks_read / max(blocks, 1), 3),
                "rounds_mean": round(rounds / max(len(queries), 1), 2),
                "run_again_in_a_snapshot": snapshots,
                **{name: Latency.of(times, sum(times)).__dict__ for name, times in timings.items() if times},
            }
        return report
    finally:
        await connection.close()


async def _timed(into: list[float], call: Awaitable[KeywordRanking]) -> KeywordRanking:
    started = time.perf_counter()
    result = await call
    into.append(time.perf_counter() - started)
    return result


def same_ranking(ours: Sequence[RetrievedChunk], reference: Sequence[RetrievedChunk]) -> bool:
    """The same chunks in the same order with the same scores, except that chunks whose scores tie
    may come in either order: SQL sums a chunk's parts in no set order, so ties differ in the last bits."""
    if len(ours) != len(reference):
        return False
    start = 0
    while start < len(ours):
        end = start + 1
        while end < len(ours) and math.isclose(ours[end].score, ours[start].score, rel_tol=1e-9):
            end += 1
        tied = slice(start, end)
        if {c.chunk_id for c in ours[tied]} != {c.chunk_id for c in reference[tied]}:
            return False
        start = end
    return all(math.isclose(a.score, b.score, rel_tol=1e-9) for a, b in zip(ours, reference, strict=True))


def query_embedding(embedder: LocalEmbedder, queries: Sequence[str]) -> dict[str, Any]:
    timings = []
    for query in queries[:200]:
        started = time.perf_counter()
        embedder.encode([query])
        timings.append(time.perf_counter() - started)
    return Latency.of(timings, sum(timings)).__dict__


class _Explaining:
    """A connection that EXPLAINs each query before running it: the plans the real code gets."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self.plans: list[dict[str, Any]] = []

    def transaction(self, **options: Any) -> Any:
        return self._connection.transaction(**options)

    async def execute(self, sql: str, *args: Any) -> str:
        return str(await self._connection.execute(sql, *args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._connection.fetchval(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        plan = await self._connection.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
        self.plans.append(json.loads(plan)[0]["Plan"])
        return list(await self._connection.fetch(sql, *args))


def _indexes(plan: dict[str, Any]) -> set[str]:
    found = {plan["Index Name"]} if "Index Name" in plan else set()
    for child in plan.get("Plans", []):
        found |= _indexes(child)
    return found


async def plans(database_url: str, query: str, vector: np.ndarray) -> dict[str, list[str]]:
    """Which indexes the vector and keyword queries use, plain and with a collection filter."""
    connection = await asyncpg.connect(database_url)
    await _register_vector(connection)
    try:
        used: dict[str, list[str]] = {}
        for label, request in (
            ("unfiltered", SearchRequest(query=query, top_k=10)),
            ("collection filter", SearchRequest(query=query, top_k=10, collection="scifact")),
        ):
            explaining = _Explaining(connection)
            returned = await vector_search(explaining, vector, request, 10)  # type: ignore[arg-type]
            used[f"vector, {label}"] = [*sorted(_indexes(explaining.plans[-1])), f"{len(returned)} rows"]
            explaining = _Explaining(connection)
            returned = await keyword_search(explaining, request, 10)  # type: ignore[arg-type]
            used[f"keyword, {label}"] = [*sorted(_indexes(explaining.plans[-1])), f"{len(returned)} rows"]
        return used
    finally:
        await connection.close()
