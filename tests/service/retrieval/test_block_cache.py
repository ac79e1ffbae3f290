"""Keyword queries share decoded posting lists, and stay exactly the full query's as blocks change."""

from __future__ import annotations

import asyncpg
import numpy as np
import pytest

from ragcorp_service.ingestion import store as store_module
from ragcorp_service.ingestion.postings import merge
from ragcorp_service.retrieval import keyword
from ragcorp_service.retrieval.block_cache import BlockCache, DecodedTerm
from ragcorp_service.retrieval.blocks import DecodedPostings, Directory
from ragcorp_service.retrieval.keyword import KeywordRanking, full_keyword_ranking, keyword_ranking
from ragcorp_service.retrieval.request import SearchRequest
from tests.support import postings_corpus as corpus

LIMIT = 10


def term_of(postings: int, generation: int = 1) -> tuple[Directory, DecodedTerm]:
    """A one-block term of `postings` postings written by merge `generation`."""
    ids = np.arange(postings, dtype=np.int64)
    directory = Directory(1.0, ids[:1], ids[-1:], np.ones(1), np.array([postings]), np.array([generation]))
    decoded = DecodedPostings(ids, np.ones(postings), np.full(postings, 10.0), np.zeros(postings, np.int32))
    return directory, DecodedTerm.of(directory.firsts, directory.generations, decoded)


def test_a_term_is_served_only_under_the_directory_it_was_read_with() -> None:
    cache = BlockCache(2**20)
    directory, decoded = term_of(100)
    cache.put("lava", decoded)
    assert cache.get("lava", directory) is decoded
    rewritten, _ = term_of(100, generation=2)  # a merge rewrote the block
    assert cache.get("lava", rewritten) is None
    with pytest.raises(ValueError, match="read-only"):
        decoded.tf_less_one[0] = 2  # shared by every query that hits: nobody may change it


def decoded_postings(rng: np.random.Generator, count: int, most: tuple[int, int, int]) -> DecodedPostings:
    """`count` postings in ascending chunk id order, tf, length and code up to `most`."""
    most_tf, most_len, most_code = most
    return DecodedPostings(
        np.sort(rng.choice(10**7, count, replace=False)).astype(np.int64) + 5_000_000_000,
        rng.integers(1, most_tf, count, endpoint=True).astype(np.float64),
        rng.integers(1, most_len, count, endpoint=True).astype(np.float64),
        rng.integers(1, most_code, count, endpoint=True).astype(np.int32),
    )


@pytest.mark.parametrize("most", [(3, 400, 2), (256, 70_000, 300)], ids=["usual", "the-limits"])
def test_a_cached_term_gives_back_exactly_what_was_decoded(most: tuple[int, int, int]) -> None:
    decoded = decoded_postings(np.random.default_rng(3), 5000, most)
    firsts = decoded.chunk_ids[::128]
    term = DecodedTerm.of(firsts, np.ones(firsts.size, np.int64), decoded)
    again = term.postings()
    for name in ("chunk_ids", "tf", "chunk_len", "codes"):
        assert np.array_equal(getattr(again, name), getattr(decoded, name)), name
    assert again.chunk_ids.dtype == np.int64 and again.tf.dtype == again.chunk_len.dtype == np.float64
    if most == (3, 400, 2):  # a byte or two a field: about a quarter of what scoring holds
        assert term.nbytes < 9 * 5000 < decoded.nbytes / 3


def test_least_recently_used_terms_leave_first_and_the_cache_keeps_its_size() -> None:
    one = term_of(1000)[1].nbytes
    cache = BlockCache(3 * one)
    for word in ("a", "b", "c"):
        cache.put(word, term_of(1000)[1])
    assert cache.get("a", term_of(1000)[0]) is not None  # "a" used: "b" is now the oldest
    cache.put("d", term_of(1000)[1])
    assert [w for w in "abcd" if cache.get(w, term_of(1000)[0]) is not None] == ["a", "c", "d"]
    assert cache.used == 3 * one
    cache.put("huge", term_of(10_000)[1])  # bigger than the whole cache: not kept, nothing evicted
    assert cache.used == 3 * one and cache.get("huge", term_of(10_000)[0]) is None


async def ranked(
    database_url: str, queries: list[str], cache: BlockCache
) -> list[tuple[KeywordRanking, KeywordRanking]]:
    """(with the cache, the full query in SQL) for each query."""
    connection = await asyncpg.connect(database_url)
    try:
        pairs = []
        for query in queries:
            request = SearchRequest(query=query, top_k=LIMIT, mode="keyword")
            fast = await keyword_ranking(connection, request, LIMIT, cache=cache)
            pairs.append((fast, await full_keyword_ranking(connection, request, LIMIT)))
        return pairs
    finally:
        await connection.close()


def assert_exact(pairs: list[tuple[KeywordRanking, KeywordRanking]]) -> None:
    for fast, full in pairs:
        corpus.assert_same_ranking(fast, full)


async def test_repeated_queries_are_served_from_memory_and_stay_exact_as_blocks_change(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyword, "INLINE_BLOCKS", 0)  # lists here are short: read them as blocks, not with the plan
    rng = np.random.default_rng(41)
    stored = await corpus.store(database_url, corpus.documents(rng, 120, lengths=(20, 120)))
    connection = await asyncpg.connect(database_url)
    try:
        await merge(connection)
        queries, cache = corpus.queries(rng, 20), BlockCache(64 * 2**20)
        assert_exact(await ranked(database_url, queries, cache))
        again = await ranked(database_url, queries, cache)
        assert_exact(again)
        assert all(fast.blocks_read == 0 and fast.blocks_cached == fast.blocks > 0 for fast, _ in again)

        for record, _ in stored[::4]:  # tombstones mask cached postings as they mask read ones
            assert await store_module.delete_document(connection, record.id)
        after_deletes = await ranked(database_url, queries, cache)
        assert_exact(after_deletes)
        assert all(fast.blocks_read == 0 for fast, _ in after_deletes)

        await corpus.store(database_url, corpus.documents_of([queries[0]] * 5))  # the best answers to queries[0]
        await merge(connection)  # rewrites the last block of each of its words
        after_merge = await ranked(database_url, queries, cache)
    finally:
        await connection.close()
    assert_exact(after_merge)
    assert sum(fast.blocks_read for fast, _ in after_merge) > 0  # the rewritten lists were read again
    assert sum(fast.blocks_cached for fast, _ in after_merge) > 0  # the others still served from memory
    newest = max(c.chunk_id for fast, _ in after_merge for c in fast.chunks)
    assert newest in {c.chunk_id for c in after_merge[0][0].chunks}
