"""A replica's block cache starts with the most common words' lists, and queries stay exact with them."""

from __future__ import annotations

import asyncpg
import numpy as np
import pytest

from ragcorp_service.ingestion.postings import merge
from ragcorp_service.retrieval import cache_warming, keyword
from ragcorp_service.retrieval.block_cache import CACHED_POSTING_BYTES, BlockCache
from ragcorp_service.retrieval.cache_warming import reads, warm_block_cache
from ragcorp_service.retrieval.keyword import full_keyword_ranking, keyword_ranking
from ragcorp_service.retrieval.request import SearchRequest
from tests.support import postings_corpus as corpus


def test_the_most_common_words_that_fit_are_read_in_bounded_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_warming, "POSTINGS_A_READ", 100)
    frequencies = [("cell", 150), ("patient", 60), ("study", 30), ("effect", 10), ("rare", 5)]
    budget = (150 + 60 + 30 + 9) * CACHED_POSTING_BYTES  # "effect" would pass it
    assert reads(frequencies, budget) == [["cell"], ["patient", "study"]]  # a long list reads alone
    assert reads(frequencies, 10 * CACHED_POSTING_BYTES) == []  # not even the most common fits


async def test_warming_holds_the_most_common_words_and_queries_of_them_read_no_blocks(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyword, "INLINE_BLOCKS", 0)  # lists here are short: read them as blocks, not with the plan
    rng = np.random.default_rng(17)
    await corpus.store(database_url, corpus.documents(rng, 120, lengths=(20, 120)))
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as connection:
            await merge(connection)
            frequencies = await connection.fetch("SELECT term, chunk_freq FROM term_stats ORDER BY chunk_freq DESC")
        common = [row["term"] for row in frequencies[:4]]
        async with pool.acquire() as connection:
            postings, blocks = await connection.fetchrow(
                "SELECT sum(postings), count(*) FROM posting_blocks WHERE term = ANY($1)", common
            )
        # Room for the four most common words' lists (a byte or two a field, 16 bytes a block), not a fifth
        cache = BlockCache(postings * CACHED_POSTING_BYTES + blocks * 16 + CACHED_POSTING_BYTES)
        warmed = await warm_block_cache(pool, cache)
        assert (warmed.terms, warmed.postings) == (4, postings)
        async with pool.acquire() as connection:
            for words in (common, common[:2], common[1:3]):
                request = SearchRequest(query=" ".join(words), top_k=10, mode="keyword")
                fast = await keyword_ranking(connection, request, 10, cache=cache)
                assert fast.blocks_read == 0 and fast.blocks_cached == fast.blocks > 0
                corpus.assert_same_ranking(fast, await full_keyword_ranking(connection, request, 10))
            fifth = SearchRequest(query=frequencies[4]["term"], top_k=10, mode="keyword")
            assert (await keyword_ranking(connection, fifth, 10, cache=cache)).blocks_read > 0
    finally:
        await pool.close()
