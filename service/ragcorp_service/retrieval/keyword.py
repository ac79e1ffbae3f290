"""BM25 keyword ranking that skips the postings which cannot change the top k, exactly.

Summing every posting of the query's terms is exact but costs in proportion to
how common its words are (a query with "cell" reads 50k postings at 100k
chunks). This is MaxScore (Turtle & Flood, 1995) over impact-ordered postings
(`chunk_terms_impact_idx`: a term's postings best weight first, with tf and
length included, so every read below is index-only):

1. Read the head (`depth` best postings) of each term's list. The k-th best sum
   of the parts found there is a floor under the final k-th score.
2. Sort terms by their ceiling (idf x their best weight). The cheapest terms
   whose ceilings together stay under the floor cannot put a chunk in the top k
   on their own, so only chunks holding one of the other ("essential") terms are
   candidates; those terms' lists are read whole, the rest only at the head.
3. A candidate's score lies between its known parts and that plus, for each
   other term whose head it was not in, the last weight read (the threshold
   algorithm's bound, Fagin et al.). Candidates whose upper bound is below the
   k-th known score are dropped; the rest are scored exactly, each by one
   primary-key descent, or, when there are too many for that, by one pass over
   the query terms' lists (the full query, which is always correct too).

A query whose terms have few postings in all (`ONE_PASS_POSTINGS`) runs the full
query directly: skipping has a fixed cost that only long lists repay.

Every step only discards chunks proven unable to reach the top k, so the ranking
is the full query's, with its scores. Weights are stored against a reference mean
chunk length (migration 0004); when the corpus's mean has grown past it, today's
weight of a posting is at most `drift` = current / reference times the stored
one, so ceilings and bounds are scaled by that (and capped at k1 + 1, BM25's
limit as tf grows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import asyncpg

from ragcorp_service.retrieval.request import SearchRequest, filter_sql
from ragcorp_service.retrieval.results import RetrievedChunk, row_to_chunk

BM25_MAX_WEIGHT = 2.2  # k1 + 1 (k1 = 1.2 in bm25_weight): a term weight's limit as tf grows
_WORD = re.compile(r"\w+")
HEAD = 64  # postings per term read first, at least
ONE_PASS_POSTINGS = 10_000  # at most this many postings in all: the full query is the cheaper one
LOOKUPS = 1500  # contenders looked up one by one at most; past that one pass over the lists is cheaper
SLACK = 1e-9  # relative: sums of the same parts in another order differ in the last bits; bounds allow for it


@dataclass(frozen=True)
class KeywordRanking:
    chunks: list[RetrievedChunk]
    depth: int  # postings per term read for the bounds; 0: the full query


def head_depth(limit: int) -> int:
    """Deep enough that the head of the lists holds a good k-th score, so the bounds prune well."""
    return max(HEAD, 2 * limit)


_STATS_AND_TERMS = """
    stats AS (
        SELECT chunk_count, term_total::float8 / greatest(chunk_count, 1) AS avgdl,
               greatest(1, term_total::float8 / greatest(chunk_count, 1) / coalesce(reference_avgdl, 1)) AS drift
        FROM corpus_stats
    ), terms AS (
        SELECT t.term, ln(1 + (s.chunk_count - ts.chunk_freq + 0.5)::float8 / (ts.chunk_freq + 0.5)) AS idf
        FROM unnest(tsvector_to_array(to_tsvector('english', $1))) AS t(term)
        JOIN term_stats ts ON ts.term = t.term CROSS JOIN stats s
    )"""

_POSTINGS_SQL = """
    SELECT sum(chunk_freq) FROM term_stats WHERE term = ANY(tsvector_to_array(to_tsvector('english', $1)))
"""

_WITH_TEXT = """
    SELECT c.id, c.document_id, d.title, c.text, c.collection, d.metadata::text AS metadata, ranked.score
    FROM ranked JOIN chunks c ON c.id = ranked.chunk_id JOIN documents d ON d.id = c.document_id"""


def _max_score_sql(where: str) -> str:
    """The top $2 by MaxScore, with impact-ordered lists of $3 postings per term for the bounds."""
    in_filter = f"JOIN chunks c ON c.id = parts.chunk_id WHERE {where}" if where else ""
    head_filter = f"JOIN chunks c ON c.id = top.chunk_id WHERE {where}" if where else ""
    return f"""
    WITH {_STATS_AND_TERMS}, top AS MATERIALIZED (
        SELECT terms.term, p.chunk_id, p.weight, terms.idf * bm25_weight(p.tf, p.chunk_len, s.avgdl) AS part
        FROM terms CROSS JOIN stats s CROSS JOIN LATERAL (
            SELECT ct.chunk_id, ct.tf, ct.chunk_len, ct.weight FROM chunk_terms ct
            WHERE ct.term = terms.term ORDER BY ct.weight DESC LIMIT $3
        ) p
    ), floor AS (
        -- the k-th best partial score among chunks at the head of some list: the k-th score is at least this
        SELECT CASE WHEN count(*) < $2 THEN 0 ELSE min(lower) END AS score
        FROM (SELECT sum(part) AS lower FROM top {head_filter} GROUP BY top.chunk_id ORDER BY lower DESC LIMIT $2) head
    ), bounds AS (
        -- per term: its ceiling, the most it adds to any chunk (its first weight), and the most it adds to a
        -- chunk past its head (its last weight read, or nothing when the head is the whole list)
        SELECT terms.term, terms.idf,
               terms.idf * least({BM25_MAX_WEIGHT}, s.drift * head.first_weight) AS ceiling,
               CASE WHEN head.postings < $3 THEN 0
                    ELSE terms.idf * least({BM25_MAX_WEIGHT}, s.drift * head.last_weight) END AS unread_bound
        FROM terms CROSS JOIN stats s JOIN (
            SELECT term, count(*) AS postings, max(weight) AS first_weight, min(weight) AS last_weight
            FROM top GROUP BY term
        ) head USING (term)
    ), split AS MATERIALIZED (
        -- terms in ascending ceiling order; those whose running sum stays below the floor cannot
        -- by themselves put a chunk in the top k: a top-k chunk contains an essential term
        SELECT bounds.term, bounds.idf, bounds.unread_bound,
               sum(bounds.ceiling) OVER (ORDER BY bounds.ceiling, bounds.term) >= (SELECT score FROM floor) AS essential
        FROM bounds
    ), parts AS (
        -- exact parts: every posting of an essential term, the head of the others' lists
        SELECT ct.chunk_id, true AS essential, split.idf * bm25_weight(ct.tf, ct.chunk_len, s.avgdl) AS part,
               0::float8 AS unread_bound
        FROM split JOIN chunk_terms ct ON ct.term = split.term CROSS JOIN stats s WHERE split.essential
        UNION ALL
        SELECT top.chunk_id, false, top.part, split.unread_bound
        FROM top JOIN split USING (term) WHERE NOT split.essential
    ), candidates AS MATERIALIZED (
        SELECT parts.chunk_id, sum(parts.part) AS lower,
               sum(parts.part) + greatest(0, (SELECT coalesce(sum(unread_bound), 0) FROM split WHERE NOT essential)
                                             - sum(parts.unread_bound)) AS upper
        FROM parts {in_filter}
        GROUP BY parts.chunk_id HAVING bool_or(parts.essential)
    ), contenders AS MATERIALIZED (
        SELECT candidates.* FROM candidates
        WHERE candidates.upper >= (1 - {SLACK}) * greatest(
            (SELECT score FROM floor),
            (SELECT coalesce(min(lower), 0) FROM (SELECT lower FROM candidates ORDER BY lower DESC LIMIT $2) k))
    ), ranked AS (
        -- few contenders: look each up (one primary-key descent finds all its query terms)
        (SELECT contenders.chunk_id, exact.score
        FROM contenders CROSS JOIN LATERAL (
            SELECT CASE WHEN contenders.upper - contenders.lower <= {SLACK} * contenders.lower
                        THEN contenders.lower ELSE sum(terms.idf * bm25_weight(ct.tf, ct.chunk_len, s.avgdl)) END
                   AS score
            FROM chunk_terms ct JOIN terms ON terms.term = ct.term CROSS JOIN stats s
            WHERE contenders.upper - contenders.lower > {SLACK} * contenders.lower
              AND ct.chunk_id = contenders.chunk_id AND ct.term = ANY(ARRAY(SELECT term FROM terms))
        ) exact
        WHERE (SELECT count(*) FROM contenders) <= $4
        ORDER BY exact.score DESC, contenders.chunk_id LIMIT $2)
        UNION ALL
        -- many: one pass over every posting of the query's terms costs less than that many lookups
        ({_every_posting(where, "(SELECT count(*) FROM contenders) > $4")})
    )
    {_WITH_TEXT}
    ORDER BY ranked.score DESC, c.id
    """


def _every_posting(where: str, condition: str = "true") -> str:
    """The top $2 by summing every posting of every query term (when `condition` holds)."""
    chunk_filter = f"JOIN chunks c ON c.id = ct.chunk_id AND {where}" if where else ""
    return f"""
        SELECT ct.chunk_id, sum(terms.idf * bm25_weight(ct.tf, ct.chunk_len, s.avgdl)) AS score
        FROM terms JOIN chunk_terms ct ON ct.term = terms.term CROSS JOIN stats s {chunk_filter}
        WHERE {condition}
        GROUP BY ct.chunk_id ORDER BY score DESC, ct.chunk_id LIMIT $2"""


def _full_sql(where: str) -> str:
    """Every posting of every query term: the exact ranking at its full cost."""
    return f"""
    WITH {_STATS_AND_TERMS}, ranked AS ({_every_posting(where)})
    {_WITH_TEXT}
    ORDER BY ranked.score DESC, c.id
    """


async def keyword_ranking(
    connection: asyncpg.Connection, request: SearchRequest, limit: int, depth: int | None = None
) -> KeywordRanking:
    """BM25 (k1=1.2, b=0.75) top `limit`, exact.

    `depth` is the postings per term read for the bounds; 0 runs the full query. By default the
    full query runs when the query's terms have few postings in all (skipping has a fixed cost
    that only pays off on long lists), else `head_depth(limit)`.
    """
    if not _WORD.search(request.query):  # only punctuation: nothing to match
        return KeywordRanking([], 0)
    if depth is None:
        postings = await connection.fetchval(_POSTINGS_SQL, request.query)
        depth = 0 if (postings or 0) <= ONE_PASS_POSTINGS else head_depth(limit)
    where, params = filter_sql(request, 5 if depth else 3)
    if depth:
        rows = await connection.fetch(_max_score_sql(where), request.query, limit, depth, LOOKUPS, *params)
    else:
        rows = await connection.fetch(_full_sql(where), request.query, limit, *params)
    return KeywordRanking([row_to_chunk(row) for row in rows], depth)
