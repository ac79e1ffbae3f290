"""The store writes a batch at once and keeps the BM25 statistics equal to what it stored."""

from __future__ import annotations

import asyncpg
import numpy as np

from tests.service.retrieval import postings_corpus as corpus


async def test_a_batch_stores_repeated_content_once_and_counts_it_once(database_url: str) -> None:
    rng = np.random.default_rng(17)
    first, second = corpus.documents(rng, 2, lengths=(10, 30))
    written = await corpus.store(database_url, [first, second, first])
    assert [created for _, created in written] == [True, True, False]
    assert written[0][0].id == written[2][0].id
    connection = await asyncpg.connect(database_url)
    try:
        counts = await connection.fetchrow(
            """
            SELECT (SELECT count(*) FROM documents) AS documents, (SELECT count(*) FROM chunks) AS chunks,
                   (SELECT chunk_count FROM corpus_stats) AS counted,
                   (SELECT count(*) FROM chunk_terms) AS postings,
                   (SELECT sum(chunk_freq) FROM term_stats) AS frequencies
            """
        )
    finally:
        await connection.close()
    assert (counts["documents"], counts["chunks"], counts["counted"]) == (2, 8, 8)
    assert counts["postings"] == counts["frequencies"]  # one posting per (term, chunk), each counted once
