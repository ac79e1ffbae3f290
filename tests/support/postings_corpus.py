"""A corpus whose posting lists are long enough for keyword search's bounds to matter.

Words follow a Zipf law, as in real text, so a few terms are in most chunks and
most terms in a few; chunk lengths vary fivefold, so length normalisation moves
scores. Stored through the real store path (vectors are random: keyword search
never reads them).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import numpy as np
import pytest
from pgvector.asyncpg import register_vector

from ragcorp_service.ingestion.chunking import Chunk
from ragcorp_service.ingestion.pipeline import content_hash
from ragcorp_service.ingestion.store import ChunkedDocument, DocumentRecord, NewDocument, insert_documents
from ragcorp_service.local_models import DIMENSIONS
from ragcorp_service.retrieval.keyword import KeywordRanking

VOCABULARY = [f"term{i:03d}" for i in range(300)]
_ZIPF = 1 / np.arange(1, len(VOCABULARY) + 1) ** 1.1


def words(rng: np.random.Generator, count: int) -> list[str]:
    return list(rng.choice(VOCABULARY, size=count, p=_ZIPF / _ZIPF.sum()))


def documents(
    rng: np.random.Generator, count: int, lengths: tuple[int, int], collection: str = "default"
) -> list[ChunkedDocument]:
    """`count` documents of four chunks each, chunk lengths drawn from `lengths` (words)."""
    batch = []
    for _ in range(count):
        chunks = [Chunk(" ".join(words(rng, int(rng.integers(*lengths)))), 0) for _ in range(4)]
        text = "\n\n".join(chunk.text for chunk in chunks)
        vectors = rng.normal(size=(len(chunks), DIMENSIONS)).astype(np.float32)
        document = NewDocument(collection, "", text, None, {}, content_hash(text))
        batch.append(ChunkedDocument(document, chunks, list(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))))
    return batch


def documents_of(texts: Sequence[str], collection: str = "default") -> list[ChunkedDocument]:
    """A document of one chunk per text, in order (so chunk ids follow it)."""
    rng = np.random.default_rng(0)
    batch = []
    for text in texts:
        vector = rng.normal(size=DIMENSIONS).astype(np.float32)
        document = NewDocument(collection, "", text, None, {}, content_hash(text))
        batch.append(ChunkedDocument(document, [Chunk(text, 0)], [vector / np.linalg.norm(vector)]))
    return batch


async def store(database_url: str, batch: Sequence[ChunkedDocument]) -> list[tuple[DocumentRecord, bool]]:
    """`insert_documents` on a connection of its own: what it returns."""
    connection = await asyncpg.connect(database_url)
    await register_vector(connection)
    try:
        return await insert_documents(connection, batch)
    finally:
        await connection.close()


def queries(rng: np.random.Generator, count: int) -> list[str]:
    """One to eight words each: some of the forty commonest, the rest from the whole vocabulary."""
    return [
        " ".join(
            [
                *rng.choice(VOCABULARY[:40], size=int(rng.integers(1, 5))),
                *rng.choice(VOCABULARY, size=int(rng.integers(0, 5))),
            ]
        )
        for _ in range(count)
    ]


STATISTICS_CHECK = """
    SELECT (SELECT count(*) FROM (SELECT term, count(*) AS n FROM live_postings GROUP BY term) p
              FULL JOIN term_stats ts USING (term) WHERE p.n IS DISTINCT FROM ts.chunk_freq) AS disagreeing,
           (SELECT chunk_count FROM corpus_stats) = (SELECT count(*) FROM chunks) AS chunks_counted,
           (SELECT term_total FROM corpus_stats) = (SELECT coalesce(sum(term_count), 0) FROM chunks) AS terms_counted
"""


async def statistics_agree(connection: asyncpg.Connection) -> bool:
    """Postings, term frequencies and corpus totals equal a fresh count of the stored chunks."""
    row = await connection.fetchrow(STATISTICS_CHECK)
    return bool(row["disagreeing"] == 0 and row["chunks_counted"] and row["terms_counted"])


async def postings_disagreeing_with_chunks(connection: asyncpg.Connection, postings: str = "live_postings") -> int:
    """Postings (`postings`: live_postings, blocks less tombstones plus the tail; or chunk_terms before
    0005) that a fresh reading of every chunk's keyword vector would not give, and the other way round."""
    return int(
        await connection.fetchval(
            f"""
            WITH fresh AS (
                SELECT u.lexeme AS term, c.id AS chunk_id, coalesce(array_length(u.positions, 1), 1) AS tf,
                       c.term_count AS chunk_len
                FROM chunks c, unnest(c.tsv) u
            ), stored AS (SELECT term, chunk_id, tf, chunk_len FROM {postings})
            SELECT (SELECT count(*) FROM (TABLE fresh EXCEPT ALL TABLE stored) a)
                 + (SELECT count(*) FROM (TABLE stored EXCEPT ALL TABLE fresh) b)
            """
        )
    )


def assert_same_ranking(fast: KeywordRanking, full: KeywordRanking) -> None:
    """Same chunks, order and scores; chunks tied on score may swap (SQL sums parts in no set order)."""
    assert [c.score for c in fast.chunks] == pytest.approx([c.score for c in full.chunks], rel=1e-9)
    ties = [round(c.score, 9) for c in fast.chunks]
    assert sorted(zip(ties, [c.chunk_id for c in fast.chunks], strict=True)) == sorted(
        zip(ties, [c.chunk_id for c in full.chunks], strict=True)
    )
