"""BM25 keyword ranking over posting blocks, exact: every block of the query's terms at once, or for
very long lists only the blocks that could hold a top-k chunk.

Postings live in blocks of up to 128 per term in chunk id order (migration 0005),
plus a small tail of recent ones (`chunk_terms`) and tombstones for chunks deleted
or retitled since the last merge. A query, in one repeatable-read snapshot:

1. Reads each query term's idf, its blocks' directory (first and last chunk id,
   the most a posting there weighs today; only blocks holding an allowed
   collection), its tail postings and the tombstones touching it (one statement).
2. When the terms hold at most `ONE_PASS_POSTINGS` postings in all (every SciFact
   claim at a million chunks does) reads every block at once. Otherwise reads
   blocks in rounds, best bound first: after each
   round, the k-th best score over what was read is a floor under the final k-th
   score, and each unread block's bound (`blocks.upper_bounds`: every term's
   known parts and unread bounds summed over its span) says whether any chunk in
   it could reach that floor. Blocks that cannot are never read; the rounds end
   when no unread block can.
3. Looks up the top k's text.

Every chunk that reaches the floor has all its postings read (one left unread
would bound it below the floor), so the top k and their scores are the full
query's (`full_keyword_ranking`, over every live posting in SQL, which tests and
the bench compare against). Filters are decided from what the blocks carry (their
collection codes) and, for metadata, from the set of chunks it permits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
import numpy as np

from ragcorp_service.retrieval.block_cache import BlockCache, DecodedTerm
from ragcorp_service.retrieval.blocks import (
    BOUND_SLACK,
    DecodedPostings,
    Directory,
    PackedBlocks,
    Postings,
    Scores,
    bm25_parts,
    decode,
)
from ragcorp_service.retrieval.request import SearchRequest, filter_sql
from ragcorp_service.retrieval.results import RetrievedChunk, row_to_chunk, scored_chunks

BM25_MAX_WEIGHT = 2.2  # k1 + 1 (k1 = 1.2 in bm25_weight): a term weight's limit as tf grows
_WORD = re.compile(r"\w+")
# At most this many block postings in all: reading them all beats rounds (57 of 60 SciFact claims at
# 1M chunks, whose terms hold up to 1.55M: chunk ids carry no topic order, so block maxima barely differ).
ONE_PASS_POSTINGS = 2_000_000
FIRST_ROUND = 16  # blocks read in the first round; each round reads four times as many as the last
INLINE_BLOCKS = 8  # a term with at most this many blocks has them all read with its directory


@dataclass(frozen=True)
class KeywordRanking:
    chunks: list[RetrievedChunk]
    blocks_read: int = 0
    blocks: int = 0  # in the query terms' directories
    rounds: int = 0  # round trips that read postings (the plan's included)
    in_snapshot: bool = False  # run again in one snapshot: a merge moved blocks mid-query
    blocks_cached: int = 0  # served decoded from the block cache instead of read
    ranked: list[tuple[int, float]] = field(default_factory=list)  # (chunk id, score), best first


_STATS_AND_TERMS = """
    stats AS (
        SELECT chunk_count, term_total::float8 / greatest(chunk_count, 1) AS avgdl FROM corpus_stats
    ), terms AS (
        SELECT t.term, ln(1 + (s.chunk_count - ts.chunk_freq + 0.5)::float8 / (ts.chunk_freq + 0.5)) AS idf
        FROM unnest(tsvector_to_array(to_tsvector('english', $1))) AS t(term)
        JOIN term_stats ts ON ts.term = t.term CROSS JOIN stats s
    )"""

#: Blocks by runs: each (term, first, last) is one index range scan, its blocks in order; a term
#: with none in its run comes back with NULLs. (Cache warming reads whole lists with it too.)
BLOCKS_SQL = """
    SELECT r.n, read.packed, read.firsts, read.postings, read.generations
    FROM unnest($1::text[], $2::int8[], $3::int8[]) WITH ORDINALITY AS r(term, low, high, n)
    CROSS JOIN LATERAL (
        SELECT string_agg(b.packed, ''::bytea ORDER BY b.first_chunk) AS packed,
               array_agg(b.first_chunk ORDER BY b.first_chunk) AS firsts,
               array_agg(b.postings ORDER BY b.first_chunk) AS postings,
               array_agg(b.generation ORDER BY b.first_chunk) AS generations
        FROM posting_blocks b
        WHERE b.term = r.term AND b.first_chunk BETWEEN r.low AND r.high AND ($4::int[] IS NULL OR b.codes && $4)
    ) read
"""


def _plan_sql(request: SearchRequest) -> tuple[str, list[Any]]:
    """Step 1's statement and its parameters after $1 (the query text)."""
    where, params = filter_sql(request, 2)
    tail_filter = f"JOIN chunks c ON c.id = ct.chunk_id AND {where}" if where else ""
    allowed, block_filter = "NULL::int[]", ""
    if request.collection is not None or request.allowed_collections is not None:
        first = 2 + len(params)
        allowed_names = request.allowed_collections
        params += [request.collection, None if allowed_names is None else sorted(allowed_names)]
        allowed = f"""(SELECT coalesce(array_agg(code), '{{}}') FROM collection_codes
                      WHERE (${first}::text IS NULL OR collection = ${first})
                        AND (${first + 1}::text[] IS NULL OR collection = ANY(${first + 1})))"""
        block_filter = "AND b.codes && (SELECT codes FROM allowed)"
    permitted = f"(SELECT coalesce(array_agg(c.id), '{{}}') FROM chunks c WHERE {where})" if request.filters else "NULL"
    return (
        f"""
    WITH {_STATS_AND_TERMS}, allowed AS (SELECT {allowed} AS codes)
    SELECT terms.term, terms.idf, stats.avgdl, d.firsts, d.lasts, d.bounds, d.postings, d.generations,
           inline.packed,
           tail.ids, tail.tfs, tail.lens, (SELECT codes FROM allowed) AS allowed,
           (SELECT array_agg(chunk_id) FROM posting_tombstones WHERE terms && ARRAY(SELECT term FROM terms)) AS dead,
           {permitted} AS permitted
    FROM terms CROSS JOIN stats
    CROSS JOIN LATERAL (
        SELECT array_agg(b.first_chunk ORDER BY b.first_chunk) AS firsts,
               array_agg(b.last_chunk ORDER BY b.first_chunk) AS lasts,
               array_agg(terms.idf * least({BM25_MAX_WEIGHT},
                                           greatest(1, stats.avgdl / b.reference_avgdl) * b.max_weight)
                         ORDER BY b.first_chunk) AS bounds,
               array_agg(b.postings ORDER BY b.first_chunk) AS postings,
               array_agg(b.generation ORDER BY b.first_chunk) AS generations
        FROM posting_blocks b WHERE b.term = terms.term {block_filter}
    ) d
    LEFT JOIN LATERAL (  -- a short list comes whole at once: a round trip costs more than its blocks
        SELECT string_agg(b.packed, ''::bytea ORDER BY b.first_chunk) AS packed
        FROM posting_blocks b WHERE b.term = terms.term {block_filter} AND cardinality(d.firsts) <= {INLINE_BLOCKS}
    ) inline ON true
    CROSS JOIN LATERAL (
        SELECT array_agg(ct.chunk_id) AS ids, array_agg(ct.tf) AS tfs, array_agg(ct.chunk_len) AS lens
        FROM chunk_terms ct {tail_filter} WHERE ct.term = terms.term
    ) tail
    """,
        params,
    )


def _array(values: list[Any] | None, dtype: type) -> np.ndarray:
    return np.asarray(values if values is not None else [], dtype)


@dataclass
class _Query:
    """What one query knows so far: each term's directory, which blocks are read, what they scored."""

    terms: list[str]
    directories: list[Directory]
    avgdl: float
    dead: np.ndarray  # tombstoned chunk ids, sorted
    allowed: np.ndarray | None  # collection codes; None: any
    permitted: np.ndarray | None  # chunk ids the metadata filter permits; None: any
    scores: Scores
    unread: list[np.ndarray] = field(init=False)  # bool per block, all True at first

    def __post_init__(self) -> None:
        self.unread = [np.ones(d.firsts.size, bool) for d in self.directories]

    def keep(self, chunk_ids: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Which decoded postings count: not tombstoned, in an allowed collection, permitted."""
        mask = ~np.isin(chunk_ids, self.dead)
        if self.allowed is not None:
            mask &= np.isin(codes, self.allowed)
        if self.permitted is not None:
            mask &= np.isin(chunk_ids, self.permitted)
        return mask

    def to_read(self, budget: int | None, limit: int) -> list[np.ndarray]:
        """Per term, the indices (ascending) of the unread blocks to read next: those that could hold a
        top-`limit` chunk, the `budget` best bounds first (None: every unread block). [] when none."""
        indices = [np.flatnonzero(u) for u in self.unread]
        if budget is None:
            return indices if any(i.size for i in indices) else []
        floor = self.scores.kth(limit)
        ceilings = np.concatenate(self.scores.upper_bounds(self.directories, indices))
        terms = np.concatenate([np.full(i.size, t) for t, i in enumerate(indices)])
        blocks = np.concatenate(indices)
        own = np.concatenate([d.bounds[i] for d, i in zip(self.directories, indices, strict=True)])
        worth = np.flatnonzero(ceilings >= floor * (1 - BOUND_SLACK))
        if not worth.size:
            return []
        # best bound first; among equals, the block whose own postings weigh most raises the floor most
        best = worth[np.lexsort((-own[worth], -ceilings[worth]))[:budget]]
        return [np.sort(blocks[best][terms[best] == t]) for t in range(len(indices))]

    def scored(self, read: list[tuple[int, DecodedPostings]]) -> list[Postings]:
        """The postings that count among those just read ((term, postings) pairs), with their parts."""
        scored = []
        for term, postings in read:
            chunk_ids, tf, chunk_len = postings.chunk_ids, postings.tf, postings.chunk_len
            if self.dead.size or self.allowed is not None or self.permitted is not None:
                keep = self.keep(chunk_ids, postings.codes)
                chunk_ids, tf, chunk_len = chunk_ids[keep], tf[keep], chunk_len[keep]
            scored.append(Postings(chunk_ids, bm25_parts(self.directories[term].idf, tf, chunk_len, self.avgdl)))
        return scored

    def from_cache(self, cache: BlockCache) -> int:
        """Score every term whose unread blocks the cache holds as this plan lists them; how many blocks."""
        if self.allowed is not None:  # a filtered directory lists a subset: not what the cache keeps
            return 0
        hits = []
        for term, (word, directory) in enumerate(zip(self.terms, self.directories, strict=True)):
            if self.unread[term].all() and (found := cache.get(word, directory)) is not None:
                hits.append((term, found.postings()))
                self.unread[term][:] = False
        self.scores.add(self.scored(hits))
        return sum(self.directories[term].firsts.size for term, _ in hits)


class _Moved(Exception):
    """A block read after planning is not the one planned with: a merge ran in between."""


def _query(rows: list[asyncpg.Record]) -> _Query:
    first = rows[0]
    avgdl = float(first["avgdl"])
    directories, tails = [], []
    for row in rows:
        idf = float(row["idf"])
        directories.append(
            Directory(
                idf=idf,
                firsts=_array(row["firsts"], np.int64),
                lasts=_array(row["lasts"], np.int64),
                bounds=_array(row["bounds"], np.float64),
                postings=_array(row["postings"], np.int64),
                generations=_array(row["generations"], np.int64),
            )
        )
        tail_parts = bm25_parts(idf, _array(row["tfs"], np.int64), _array(row["lens"], np.int64), avgdl)
        tails.append(Postings(_array(row["ids"], np.int64), tail_parts))
    ends = [a for d in directories for a in (d.firsts[:1], d.lasts[-1:])] + [t.chunk_ids for t in tails]
    span = np.concatenate(ends) if ends else np.empty(0, np.int64)
    query = _Query(
        terms=[row["term"] for row in rows],
        directories=directories,
        avgdl=avgdl,
        dead=np.sort(_array(first["dead"], np.int64)),
        allowed=None if first["allowed"] is None else _array(first["allowed"], np.int64),
        permitted=None if first["permitted"] is None else np.sort(_array(first["permitted"], np.int64)),
        scores=Scores(int(span.min()), int(span.max())) if span.size else Scores(0, -1),
    )
    inline = []
    for term, row in enumerate(rows):
        if row["packed"] is not None:  # a short list, read with its directory
            directory = directories[term]
            inline.append((term, decode(PackedBlocks(directory.firsts, directory.postings, row["packed"]))))
            query.unread[term][:] = False
    query.scores.add([*tails, *query.scored(inline)])
    return query


def _runs(wanted: list[np.ndarray]) -> list[tuple[int, int, int]]:
    """(term, first block, last block) of each run of consecutive blocks in `wanted` (per term, ascending)."""
    runs: list[tuple[int, int, int]] = []
    for term, blocks in enumerate(wanted):
        if blocks.size:
            breaks = np.flatnonzero(np.diff(blocks) != 1) + 1
            firsts, lasts = blocks[np.r_[0, breaks]], blocks[np.r_[breaks - 1, blocks.size - 1]]
            runs += [(term, int(low), int(high)) for low, high in zip(firsts, lasts, strict=True)]
    return runs


async def _read_blocks(
    connection: asyncpg.Connection, query: _Query, wanted: list[np.ndarray], cache: BlockCache | None
) -> None:
    """Read `wanted`; raises _Moved when one is gone or rewritten since the plan (outside a snapshot).
    A term whose whole list was read goes into `cache` (unfiltered queries only)."""
    runs = _runs(wanted)
    rows = await connection.fetch(
        BLOCKS_SQL,
        [query.terms[t] for t, _, _ in runs],
        [int(query.directories[t].firsts[low]) for t, low, _ in runs],
        [int(query.directories[t].firsts[high]) for t, _, high in runs],
        None if query.allowed is None else query.allowed.tolist(),
    )
    by_term: dict[int, list[PackedBlocks]] = {}
    for row in rows:
        term, low, high = runs[row["n"] - 1]
        planned = query.directories[term].generations[low : high + 1]
        if row["generations"] is None or not np.array_equal(planned, row["generations"]):
            raise _Moved  # a block gone, rewritten or split since the plan
        by_term.setdefault(term, []).append(PackedBlocks(row["firsts"], row["postings"], row["packed"]))
    # decoded a term at a time, all its runs at once: numpy is fast per posting and slow per call
    read = [(term, decode(PackedBlocks.join(parts))) for term, parts in by_term.items()]
    query.scores.add(query.scored(read))
    if cache is not None and query.allowed is None:
        for term, postings in read:
            directory = query.directories[term]
            if wanted[term].size == directory.firsts.size:  # the whole list, as the plan lists it
                cache.put(query.terms[term], DecodedTerm.of(directory.firsts, directory.generations, postings))
    for term, blocks in enumerate(wanted):
        query.unread[term][blocks] = False


async def keyword_ranking(
    connection: asyncpg.Connection,
    request: SearchRequest,
    limit: int,
    *,
    one_pass_postings: int | None = None,
    cache: BlockCache | None = None,
    with_rows: bool = True,
) -> KeywordRanking:
    """BM25 (k1=1.2, b=0.75) top `limit`, exact, reading only the blocks that could hold one of them.

    `one_pass_postings` (default `ONE_PASS_POSTINGS`): terms with at most this many block postings
    in all have every block read at once; `cache` then serves the terms it holds as the plan lists
    them and keeps those read whole (`block_cache.py`). Without rows (`with_rows=False`) only
    `ranked` is filled: what a fusion needs before it knows which chunks it will show.

    Each statement sees its own snapshot: blocks read after the plan carry the merge generation
    the plan saw, and the top k's rows must all be there. When a merge or delete ran in between,
    the query runs again in one repeatable-read snapshot (the rare case pays two round trips more).
    """
    if not _WORD.search(request.query):  # only punctuation: nothing to match
        return KeywordRanking([])
    threshold = ONE_PASS_POSTINGS if one_pass_postings is None else one_pass_postings
    try:
        return await _ranking(connection, request, limit, threshold, cache, with_rows)
    except _Moved:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            ranking = await _ranking(connection, request, limit, threshold, cache, with_rows)
        return replace(ranking, in_snapshot=True)


async def _ranking(
    connection: asyncpg.Connection,
    request: SearchRequest,
    limit: int,
    one_pass_postings: int,
    cache: BlockCache | None,
    with_rows: bool,
) -> KeywordRanking:
    sql, params = _plan_sql(request)
    plan = await connection.fetch(sql, request.query, *params)
    if not plan:
        return KeywordRanking([])
    query = _query(plan)
    blocks = sum(d.firsts.size for d in query.directories)
    blocks_read = blocks - sum(int(u.sum()) for u in query.unread)
    one_pass = sum(int(d.postings.sum()) for d in query.directories) <= one_pass_postings
    cache = cache if one_pass else None  # rounds read parts of lists: nothing to serve whole
    cached = query.from_cache(cache) if cache is not None else 0
    budget, rounds = FIRST_ROUND, 1
    while wanted := query.to_read(None if one_pass else budget, limit):
        await _read_blocks(connection, query, wanted, cache)
        rounds, blocks_read, budget = rounds + 1, blocks_read + sum(w.size for w in wanted), budget * 4
    best, best_scores = (array.tolist() for array in query.scores.top(limit))
    ranked = list(zip(best, best_scores, strict=True))
    if not with_rows:
        return KeywordRanking([], blocks_read, blocks, rounds, blocks_cached=cached, ranked=ranked)
    chunks = await scored_chunks(connection, best, best_scores)
    if len(chunks) != len(best):  # a chunk deleted since the plan
        raise _Moved
    return KeywordRanking(chunks, blocks_read, blocks, rounds, blocks_cached=cached, ranked=ranked)


def _full_sql(where: str) -> str:
    chunk_filter = f"JOIN chunks c ON c.id = p.chunk_id AND {where}" if where else ""
    return f"""
    WITH {_STATS_AND_TERMS}, ranked AS (
        SELECT p.chunk_id, sum(terms.idf * bm25_weight(p.tf, p.chunk_len, s.avgdl)) AS score
        FROM terms JOIN live_postings p ON p.term = terms.term CROSS JOIN stats s {chunk_filter}
        GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT $2
    )
    SELECT c.id, c.document_id, d.title, c.text, c.collection, d.metadata::text AS metadata, ranked.score
    FROM ranked JOIN chunks c ON c.id = ranked.chunk_id JOIN documents d ON d.id = c.document_id
    ORDER BY ranked.score DESC, c.id
    """


async def full_keyword_ranking(connection: asyncpg.Connection, request: SearchRequest, limit: int) -> KeywordRanking:
    """The same ranking by summing every live posting of every query term in SQL: the reference."""
    if not _WORD.search(request.query):
        return KeywordRanking([])
    where, params = filter_sql(request, 3)
    rows = await connection.fetch(_full_sql(where), request.query, limit, *params)
    return KeywordRanking([row_to_chunk(row) for row in rows])
