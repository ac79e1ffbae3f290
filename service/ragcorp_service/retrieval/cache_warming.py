"""A replica's block cache filled at start with the corpus's most common words.

The cache (`block_cache.py`) pays off once queries have brought in the lists of
the words they share, and those are the longest lists: at a million chunks a
query whose common words are not yet decoded reads up to 1.5M postings from
PostgreSQL, and a new replica, so every rollout's new colour, started cold (hybrid
p95 165 ms over the first 300 SciFact claims with the first cache, 56 ms once warm). Warming reads the
lists of the words in most chunks, most common first, until their postings would
fill the cache, with the same decoding and under the same directory keys a query
uses, so a query serves them only while their blocks are unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg
import numpy as np

from ragcorp_service.retrieval.block_cache import CACHED_POSTING_BYTES, BlockCache, DecodedTerm
from ragcorp_service.retrieval.blocks import PackedBlocks, decode
from ragcorp_service.retrieval.keyword import BLOCKS_SQL

#: Postings read a statement at most (or one term's): a statement's result is held whole before decoding.
POSTINGS_A_READ = 1_000_000
#: Terms considered, most common first.
CANDIDATE_TERMS = 10_000


@dataclass(frozen=True)
class Warmed:
    terms: int
    postings: int
    seconds: float


def reads(frequencies: list[tuple[str, int]], max_bytes: int) -> list[list[str]]:
    """The leading terms of `frequencies` (most common first) whose postings fit in `max_bytes`, in
    groups of at most `POSTINGS_A_READ` postings (a longer list is a group of its own)."""
    groups: list[list[str]] = []
    used, in_group = 0, POSTINGS_A_READ
    for term, count in frequencies:
        used += count * CACHED_POSTING_BYTES
        if used > max_bytes:
            break
        if in_group + count > POSTINGS_A_READ:
            groups.append([])
            in_group = 0
        groups[-1].append(term)
        in_group += count
    return groups


async def warm_block_cache(pool: asyncpg.Pool, cache: BlockCache) -> Warmed:
    """Decode the most common words' whole lists into `cache`, most common first, up to the first
    that would not fit (warming never evicts what it put)."""
    started = time.perf_counter()
    terms, postings = 0, 0
    async with pool.acquire() as connection:
        frequencies = await connection.fetch(
            "SELECT term, chunk_freq FROM term_stats ORDER BY chunk_freq DESC, term LIMIT $1", CANDIDATE_TERMS
        )
        for group in reads([(row["term"], row["chunk_freq"]) for row in frequencies], cache.max_bytes):
            # each word's whole list: one run from the first chunk id to the last, any collection
            whole = await connection.fetch(BLOCKS_SQL, group, [0] * len(group), [2**63 - 1] * len(group), None)
            for row in sorted(whole, key=lambda r: r["n"]):  # most common first
                if row["firsts"] is None:  # postings only in the tail: nothing to keep
                    continue
                firsts, generations = np.asarray(row["firsts"], np.int64), np.asarray(row["generations"], np.int64)
                decoded = DecodedTerm.of(
                    firsts, generations, decode(PackedBlocks(firsts, row["postings"], row["packed"]))
                )
                if cache.used + decoded.nbytes > cache.max_bytes:
                    return Warmed(terms, postings, time.perf_counter() - started)
                cache.put(group[row["n"] - 1], decoded)
                terms, postings = terms + 1, postings + decoded.offsets.size
    return Warmed(terms, postings, time.perf_counter() - started)
