"""The store writes a batch at once and keeps the BM25 statistics equal to what it stored."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from ragcorp_service.ingestion.chunking import Chunk
from ragcorp_service.ingestion.store import (
    ChunkedDocument,
    DocumentRecord,
    NewDocument,
    delete_document,
    insert_documents,
    update_document,
)
from ragcorp_service.local_models import DIMENSIONS
from tests.support import postings_corpus as corpus


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
                   (SELECT count(*) FROM live_postings) AS postings,
                   (SELECT sum(chunk_freq) FROM term_stats) AS frequencies
            """
        )
    finally:
        await connection.close()
    assert (counts["documents"], counts["chunks"], counts["counted"]) == (2, 8, 8)
    assert counts["postings"] == counts["frequencies"]  # one posting per (term, chunk), each counted once


async def test_a_new_title_keeps_every_chunk_id_and_the_statistics_equal_to_what_is_stored(database_url: str) -> None:
    """A title that adds and drops terms: each of the four chunks is reindexed in place, and the postings,
    term frequencies and corpus totals equal what a fresh count of the stored chunks gives."""
    rng = np.random.default_rng(5)
    batch = corpus.documents(rng, 3, lengths=(10, 40))
    [(record, _), *_] = await corpus.store(database_url, batch)
    connection = await asyncpg.connect(database_url)
    await register_vector(connection)
    try:
        ids_before = await connection.fetch("SELECT id FROM chunks WHERE document_id = $1 ORDER BY ordinal", record.id)
        first = batch[0]
        retitled = replace(first, document=replace(first.document, title="zebra quagga term001"))
        updated = await update_document(connection, record.id, metadata=None, retitled=retitled)
        assert updated is not None and updated.title == "zebra quagga term001"
        ids_after = await connection.fetch("SELECT id FROM chunks WHERE document_id = $1 ORDER BY ordinal", record.id)
        assert ids_after == ids_before
        consistency = await connection.fetchrow(
            """
            SELECT (SELECT count(*) FROM live_postings) AS postings,
                   (SELECT sum(chunk_freq) FROM term_stats) AS frequencies,
                   (SELECT count(*) FROM (SELECT term, count(*) AS n FROM live_postings GROUP BY term) p
                      FULL JOIN term_stats ts USING (term) WHERE p.n IS DISTINCT FROM ts.chunk_freq) AS disagreeing,
                   (SELECT chunk_count FROM corpus_stats) = (SELECT count(*) FROM chunks) AS chunks_counted,
                   (SELECT term_total FROM corpus_stats) = (SELECT sum(term_count) FROM chunks) AS terms_counted,
                   (SELECT chunk_freq FROM term_stats WHERE term = 'zebra') AS zebra
            """
        )
    finally:
        await connection.close()
    assert consistency["postings"] == consistency["frequencies"] and consistency["disagreeing"] == 0
    assert consistency["chunks_counted"] and consistency["terms_counted"]
    assert consistency["zebra"] == 4  # the new title's words are in each of its chunks


async def test_concurrent_retitles_deletes_and_ingests_sharing_words_never_fail_and_keep_the_statistics(
    database_url: str,
) -> None:
    """Title changes, deletes and ingests over the same words, at once: PostgreSQL may pick one of
    them as a deadlock victim, but none fails (the write is retried), and the statistics still
    equal what is stored."""
    rng = np.random.default_rng(11)
    stored = await corpus.store(database_url, corpus.documents(rng, 12, lengths=(20, 60)))
    records = [record for record, _ in stored]
    connections = [await asyncpg.connect(database_url) for _ in range(8)]
    for connection in connections:
        await register_vector(connection)

    async def retitle(connection: asyncpg.Connection, record: DocumentRecord, words: str) -> None:
        chunks = [
            Chunk(row["text"], row["token_count"])
            for row in await connection.fetch(
                "SELECT text, token_count FROM chunks WHERE document_id = $1 ORDER BY ordinal", record.id
            )
        ]
        vectors = rng.normal(size=(len(chunks), DIMENSIONS)).astype(np.float32)
        document = replace(record_as_new(record), title=words)
        await update_document(
            connection, record.id, metadata=None, retitled=ChunkedDocument(document, chunks, list(vectors))
        )

    try:
        for round_ in range(3):
            work = []
            for index, connection in enumerate(connections):
                record = records[(round_ * len(connections) + index) % len(records)]
                if index % 4 == 1:
                    work.append(insert_documents(connection, corpus.documents(rng, 2, lengths=(20, 60))))
                elif index % 4 == 3 and round_ == 2:
                    work.append(delete_document(connection, record.id))
                else:
                    work.append(retitle(connection, record, " ".join(corpus.words(rng, 6))))
            await asyncio.gather(*work)
        assert await corpus.statistics_agree(connections[0])
    finally:
        for connection in connections:
            await connection.close()


def record_as_new(record: DocumentRecord) -> NewDocument:
    return NewDocument(record.collection, record.title, "", record.source, record.metadata, record.content_sha256)
