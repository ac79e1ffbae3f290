"""Keyword search reads only the blocks that could change its top k, and ranks exactly as the full query."""

from __future__ import annotations

import asyncio

import asyncpg
import numpy as np
import pytest

from ragcorp_service.ingestion import store as store_module
from ragcorp_service.ingestion.postings import merge
from ragcorp_service.retrieval import keyword
from ragcorp_service.retrieval.keyword import KeywordRanking, full_keyword_ranking, keyword_ranking
from ragcorp_service.retrieval.request import SearchRequest
from tests.support import postings_corpus as corpus
from tests.support.postings_corpus import assert_same_ranking


async def rankings(
    database_url: str, queries: list[str], limit: int, *, one_pass_postings: int = 0, **request: object
) -> list[tuple[KeywordRanking, KeywordRanking]]:
    """(block-max, full) for each query; by default block-max reads in rounds however few the postings."""
    connection = await asyncpg.connect(database_url)
    try:
        pairs = []
        for query in queries:
            search = SearchRequest(query=query, top_k=limit, mode="keyword", **request)  # type: ignore[arg-type]
            fast = await keyword_ranking(connection, search, limit, one_pass_postings=one_pass_postings)
            pairs.append((fast, await full_keyword_ranking(connection, search, limit)))
        return pairs
    finally:
        await connection.close()


async def merged(database_url: str) -> int | None:
    connection = await asyncpg.connect(database_url)
    try:
        return await merge(connection)
    finally:
        await connection.close()


async def postings_disagreeing_with_chunks(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return await corpus.postings_disagreeing_with_chunks(connection)
    finally:
        await connection.close()


@pytest.mark.parametrize("limit", [3, 20])
async def test_block_max_ranks_exactly_as_the_full_query(
    database_url: str, limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyword, "FIRST_ROUND", 1)  # lists here are a few blocks long: read them a block at a time
    monkeypatch.setattr(keyword, "INLINE_BLOCKS", 0)
    rng = np.random.default_rng(limit)
    await corpus.store(database_url, corpus.documents(rng, 120, lengths=(20, 120)))
    assert await merged(database_url)
    await corpus.store(database_url, corpus.documents(rng, 10, lengths=(20, 120)))  # a tail besides the blocks
    assert await postings_disagreeing_with_chunks(database_url) == 0
    pairs = await rankings(database_url, corpus.queries(rng, 60), limit)
    for fast, full in pairs:
        assert_same_ranking(fast, full)


async def test_blocks_far_from_the_rare_words_chunks_are_never_read(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "common" is in every chunk (five blocks), "rare" in three early ones: a top 3 needs "rare", so
    the common word's blocks that hold none of its chunks cannot reach the third score."""
    monkeypatch.setattr(keyword, "FIRST_ROUND", 1)  # six blocks in all: the first round would read them
    monkeypatch.setattr(keyword, "INLINE_BLOCKS", 0)  # and the plan would bring them along
    texts = [f"common filler{i} words{i % 11}" + (" rare" if i in (3, 40, 90) else "") for i in range(600)]
    await corpus.store(database_url, corpus.documents_of(texts))
    await merged(database_url)
    [(fast, full)] = await rankings(database_url, ["common rare"], 3)
    assert_same_ranking(fast, full)
    assert {c.chunk_id for c in fast.chunks} == await chunk_ids_holding(database_url, "rare")
    assert fast.blocks == 6 and fast.blocks_read == 2  # rare's block and the one common block it falls in


async def chunk_ids_holding(database_url: str, word: str) -> set[int]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT id FROM chunks WHERE tsv @@ to_tsquery('english', $1)", word)
        return {row["id"] for row in rows}
    finally:
        await connection.close()


async def test_few_postings_are_read_in_one_round(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyword, "FIRST_ROUND", 1)
    monkeypatch.setattr(keyword, "INLINE_BLOCKS", 0)
    rng = np.random.default_rng(13)
    await corpus.store(database_url, corpus.documents(rng, 60, lengths=(20, 60)))
    await merged(database_url)
    (query,) = corpus.queries(rng, 1)
    (rounds, full), *_ = await rankings(database_url, [query], 5)
    (one_pass, _), *_ = await rankings(database_url, [query], 5, one_pass_postings=keyword.ONE_PASS_POSTINGS)
    assert one_pass.rounds == 2 and one_pass.blocks_read == one_pass.blocks  # the plan, then every block
    assert rounds.rounds > 2
    assert_same_ranking(one_pass, full)
    assert_same_ranking(rounds, full)


async def test_filters_apply_before_the_ranking_is_proven(database_url: str) -> None:
    rng = np.random.default_rng(3)
    a = corpus.documents(rng, 60, (20, 120), "a")
    b = corpus.documents(rng, 60, (20, 120), "b")
    await corpus.store(database_url, [x for pair in zip(a, b, strict=True) for x in pair])  # interleaved ids
    await merged(database_url)
    queries = corpus.queries(rng, 30)
    for fast, full in await rankings(database_url, queries, 10, collection="b"):
        assert_same_ranking(fast, full)
        assert {c.collection for c in fast.chunks} <= {"b"}
    for fast, full in await rankings(database_url, queries, 10, allowed_collections=frozenset({"a"})):
        assert_same_ranking(fast, full)
        assert {c.collection for c in fast.chunks} <= {"a"}
    for fast, _ in await rankings(database_url, queries, 10, collection="b", allowed_collections=frozenset({"a"})):
        assert fast.chunks == []


async def test_deleted_and_retitled_chunks_leave_search_before_and_after_the_merge(database_url: str) -> None:
    rng = np.random.default_rng(17)
    stored = await corpus.store(database_url, corpus.documents(rng, 80, lengths=(20, 120)))
    await merged(database_url)
    queries = corpus.queries(rng, 30)
    connection = await asyncpg.connect(database_url)
    try:
        for record, _ in stored[::3]:
            assert await store_module.delete_document(connection, record.id)
        before = {c.chunk_id for fast, _ in await rankings(database_url, queries, 20) for c in fast.chunks}
        tombstones = await connection.fetchval("SELECT count(*) FROM posting_tombstones")
    finally:
        await connection.close()
    assert tombstones == sum(record.chunk_count for record, _ in stored[::3])
    deleted_chunks = await chunk_ids_of(database_url, [record.id for record, _ in stored[::3]])
    assert deleted_chunks == set()  # the chunks are gone; their block postings only masked
    for fast, full in await rankings(database_url, queries, 20):
        assert_same_ranking(fast, full)
    await merged(database_url)
    assert await postings_disagreeing_with_chunks(database_url) == 0
    after = [pair for pair in await rankings(database_url, queries, 20)]
    for fast, full in after:
        assert_same_ranking(fast, full)
    assert {c.chunk_id for fast, _ in after for c in fast.chunks} == before


async def chunk_ids_of(database_url: str, document_ids: list[object]) -> set[int]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT id FROM chunks WHERE document_id = ANY($1::uuid[])", document_ids)
        return {row["id"] for row in rows}
    finally:
        await connection.close()


async def test_concurrent_ingest_delete_merge_and_search_agree(database_url: str) -> None:
    """Writers, merges and searches at once: every search is exact for its snapshot, and at the
    end the live postings are exactly what the stored chunks hold."""
    rng = np.random.default_rng(23)
    stored = await corpus.store(database_url, corpus.documents(rng, 40, lengths=(20, 80)))
    await merged(database_url)
    queries = corpus.queries(rng, 12)

    async def writer(seed: int) -> None:
        local = np.random.default_rng(seed)
        for _ in range(4):
            await corpus.store(database_url, corpus.documents(local, 5, lengths=(20, 80)))

    async def deleter() -> None:
        connection = await asyncpg.connect(database_url)
        try:
            for record, _ in stored[:10]:
                await store_module.delete_document(connection, record.id)
                await asyncio.sleep(0)
        finally:
            await connection.close()

    async def merger() -> None:
        for _ in range(6):
            await merged(database_url)
            await asyncio.sleep(0.01)

    async def searcher() -> list[tuple[KeywordRanking, KeywordRanking]]:
        found = []
        for _ in range(3):
            found += await rankings(database_url, queries, 10)
        return found

    *_, searched = await asyncio.gather(writer(1), writer(2), deleter(), merger(), searcher())
    assert searched  # each pair ran in two snapshots: only shapes are comparable mid-write
    await merged(database_url)
    assert await postings_disagreeing_with_chunks(database_url) == 0
    connection = await asyncpg.connect(database_url)
    try:
        assert await corpus.statistics_agree(connection)
    finally:
        await connection.close()
    for fast, full in await rankings(database_url, queries, 10):
        assert_same_ranking(fast, full)


async def test_blocks_rewritten_mid_query_send_it_round_again_in_one_snapshot(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every block rewritten over and over (as merges rewrite them, here without changing a posting)
    while queries plan and then read blocks: a query that reads a block newer than its plan runs
    again in one snapshot, and every ranking is the one the corpus gives."""
    monkeypatch.setattr(keyword, "FIRST_ROUND", 1)  # many round trips: many chances to be overtaken
    monkeypatch.setattr(keyword, "INLINE_BLOCKS", 0)
    rng = np.random.default_rng(29)
    await corpus.store(database_url, corpus.documents(rng, 80, lengths=(20, 120)))
    await merged(database_url)
    queries = corpus.queries(rng, 40)
    undisturbed = await rankings(database_url, queries, 10)
    for fast, full in undisturbed:
        assert_same_ranking(fast, full)
    expected = [[c.chunk_id for c in fast.chunks] for fast, _ in undisturbed]
    rewriting = asyncio.Event()

    async def rewrite() -> None:
        connection = await asyncpg.connect(database_url)
        try:
            while not rewriting.is_set():
                await connection.execute("UPDATE posting_blocks SET generation = nextval('posting_block_generation')")
        finally:
            await connection.close()

    rewriter = asyncio.create_task(rewrite())
    try:
        found = await rankings(database_url, queries * 3, 10)
    finally:
        rewriting.set()
        await rewriter
    assert [[c.chunk_id for c in fast.chunks] for fast, _ in found] == expected * 3
    assert any(fast.in_snapshot for fast, _ in found)


async def test_growing_past_the_reference_length_keeps_rankings_exact(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past REFERENCE_MAX_CHUNKS blocks keep the weights they were bounded by; the bounds scale."""
    rng = np.random.default_rng(5)
    await corpus.store(database_url, corpus.documents(rng, 60, lengths=(10, 30)))
    await merged(database_url)
    monkeypatch.setattr(store_module, "REFERENCE_MAX_CHUNKS", 0)
    await corpus.store(database_url, corpus.documents(rng, 60, lengths=(150, 300)))
    await merged(database_url)
    connection = await asyncpg.connect(database_url)
    try:
        stats = await connection.fetchrow(
            "SELECT term_total::float8 / chunk_count AS avgdl, reference_avgdl FROM corpus_stats"
        )
    finally:
        await connection.close()
    assert stats["avgdl"] > 3 * stats["reference_avgdl"]
    for fast, full in await rankings(database_url, corpus.queries(rng, 40), 10):
        assert_same_ranking(fast, full)


async def stale_postings(database_url: str) -> tuple[int, float, float]:
    """(tail postings whose weight disagrees with the recorded reference, reference, current mean length)."""
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
