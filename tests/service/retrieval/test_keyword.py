"""Keyword search skips postings only where it can prove the full query would rank the same."""

from __future__ import annotations

import asyncio

import asyncpg
import numpy as np
import pytest

from ragcorp_service.ingestion import store as store_module
from ragcorp_service.retrieval import keyword
from ragcorp_service.retrieval.keyword import KeywordRanking, keyword_ranking
from ragcorp_service.retrieval.request import SearchRequest
from tests.support import postings_corpus as corpus

SHORT_HEAD = 8  # postings per term for the bounds: far fewer than the commonest terms' hundreds


async def rankings(
    database_url: str, queries: list[str], limit: int, **request: object
) -> list[tuple[KeywordRanking, KeywordRanking]]:
    """(bounded, full) for each query."""
    connection = await asyncpg.connect(database_url)
    try:
        pairs = []
        for query in queries:
            search = SearchRequest(query=query, top_k=limit, mode="keyword", **request)  # type: ignore[arg-type]
            bounded = await keyword_ranking(connection, search, limit, SHORT_HEAD)
            full = await keyword_ranking(connection, search, limit, depth=0)
            pairs.append((bounded, full))
        return pairs
    finally:
        await connection.close()


def assert_same_ranking(bounded: KeywordRanking, full: KeywordRanking) -> None:
    assert [c.chunk_id for c in bounded.chunks] == [c.chunk_id for c in full.chunks]
    assert [c.score for c in bounded.chunks] == pytest.approx([c.score for c in full.chunks], rel=1e-9)


@pytest.mark.parametrize("lookups", [keyword.LOOKUPS, 0], ids=["looked-up", "one-pass"])
@pytest.mark.parametrize("limit", [3, 20])
async def test_skipping_postings_ranks_exactly_as_the_full_query(
    database_url: str, limit: int, lookups: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyword, "LOOKUPS", lookups)
    rng = np.random.default_rng(limit)
    await corpus.store(database_url, corpus.documents(rng, 120, lengths=(20, 120)))
    pairs = await rankings(database_url, corpus.queries(rng, 60), limit)
    for bounded, full in pairs:
        assert_same_ranking(bounded, full)


async def test_few_postings_are_read_whole_and_many_are_skipped(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(13)
    await corpus.store(database_url, corpus.documents(rng, 30, lengths=(20, 60)))
    (query,) = corpus.queries(rng, 1)
    (few, _), *_ = await rankings(database_url, [query], 5)
    default = await ranking_by_default(database_url, query, 5)
    assert default.depth == 0  # a few hundred postings: one pass over them
    monkeypatch.setattr(keyword, "ONE_PASS_POSTINGS", 0)
    skipping = await ranking_by_default(database_url, query, 5)
    assert skipping.depth == keyword.head_depth(5)
    assert (
        [c.chunk_id for c in skipping.chunks]
        == [c.chunk_id for c in default.chunks]
        == [c.chunk_id for c in few.chunks]
    )


async def ranking_by_default(database_url: str, query: str, limit: int) -> KeywordRanking:
    connection = await asyncpg.connect(database_url)
    try:
        return await keyword_ranking(connection, SearchRequest(query=query, top_k=limit, mode="keyword"), limit)
    finally:
        await connection.close()


async def test_filters_apply_before_the_ranking_is_proven(database_url: str) -> None:
    rng = np.random.default_rng(3)
    await corpus.store(
        database_url, corpus.documents(rng, 60, (20, 120), "a") + corpus.documents(rng, 60, (20, 120), "b")
    )
    pairs = await rankings(database_url, corpus.queries(rng, 30), 10, collection="b")
    for bounded, full in pairs:
        assert_same_ranking(bounded, full)
        assert {c.collection for c in bounded.chunks} <= {"b"}


async def test_growing_past_the_reference_length_keeps_rankings_exact(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past REFERENCE_MAX_CHUNKS postings keep their weights; the bounds scale for the longer chunks instead."""
    rng = np.random.default_rng(5)
    await corpus.store(database_url, corpus.documents(rng, 60, lengths=(10, 30)))
    monkeypatch.setattr(store_module, "REFERENCE_MAX_CHUNKS", 0)
    await corpus.store(database_url, corpus.documents(rng, 60, lengths=(150, 300)))
    connection = await asyncpg.connect(database_url)
    try:
        stats = await connection.fetchrow(
            "SELECT term_total::float8 / chunk_count AS avgdl, reference_avgdl FROM corpus_stats"
        )
    finally:
        await connection.close()
    assert stats["avgdl"] > 3 * stats["reference_avgdl"]
    for bounded, full in await rankings(database_url, corpus.queries(rng, 40), 10):
        assert_same_ranking(bounded, full)


async def stale_postings(database_url: str) -> tuple[int, float, float]:
    """(postings whose weight disagrees with the recorded reference, reference, current mean length)."""
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(
            """
            SELECT (SELECT count(*) FROM chunk_terms, corpus_stats
                    WHERE weight <> bm25_weight(tf, chunk_len, reference_avgdl)) AS stale,
                   reference_avgdl, term_total::float8 / chunk_count AS avgdl
            FROM corpus_stats
            """
        )
        return row["stale"], row["reference_avgdl"], row["avgdl"]
    finally:
        await connection.close()


async def test_a_small_corpus_follows_its_mean_length(database_url: str) -> None:
    rng = np.random.default_rng(7)
    await corpus.store(database_url, corpus.documents(rng, 10, lengths=(5, 15)))
    await corpus.store(database_url, corpus.documents(rng, 10, lengths=(200, 300)))
    stale, reference, avgdl = await stale_postings(database_url)
    assert stale == 0
    assert reference == pytest.approx(avgdl)


@pytest.mark.parametrize("reference_max_chunks", [store_module.REFERENCE_MAX_CHUNKS, 0])
async def test_concurrent_first_writes_agree_on_one_reference(
    database_url: str, monkeypatch: pytest.MonkeyPatch, reference_max_chunks: int
) -> None:
    """Two batches of very different lengths race into an empty corpus; every posting ends weighted alike.

    The corpus row is held locked until both writers have weighted their postings against no
    reference yet, so both race for real. With the limit at 0 the second writer cannot
    re-reference the corpus, so it must re-weight its own postings.
    """
    monkeypatch.setattr(store_module, "REFERENCE_MAX_CHUNKS", reference_max_chunks)
    rng = np.random.default_rng(11)
    short, long = corpus.documents(rng, 30, (5, 10)), corpus.documents(rng, 30, (200, 300))
    holder = await asyncpg.connect(database_url)
    try:
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM corpus_stats FOR UPDATE")
            writers = asyncio.gather(corpus.store(database_url, short), corpus.store(database_url, long))
            while await holder.fetchval(WAITING_WRITERS) < 2:  # one on the corpus row, one on a term row
                await asyncio.sleep(0.05)
                await holder.execute("SELECT pg_stat_clear_snapshot()")  # else the transaction sees one snapshot
        await writers
    finally:
        await holder.close()
    stale, _, _ = await stale_postings(database_url)
    assert stale == 0


WAITING_WRITERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
)
