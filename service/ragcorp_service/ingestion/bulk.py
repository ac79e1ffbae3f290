"""Importing a large corpus: the store path in big batches, the vector index built once at the end.

Through the API every chunk pays for its own HNSW insert (a millisecond or more
at 100k chunks, on one core), and its postings go through the tail, indexed there
and moved again by a merge. An import (`ragcorp-service import`) drops the HNSW
index and writes through the same store path as an ingest (`insert_documents`:
documents, chunks and statistics; content already stored is skipped, so an
interrupted import is run again to finish), in groups of `MERGE_EVERY_CHUNKS`
chunks whose postings go straight into blocks in the same transaction
(`merge_postings(documents)`); then it builds the index once with PostgreSQL's
parallel workers and a large `maintenance_work_mem`. Vector search is a
sequential scan until that build ends: run it before serving, or in a quiet hour.

Input is JSON Lines, one document a line: `title`, `text`, optionally `metadata`
and `source` (BEIR's corpus.jsonl reads as is), and optionally `chunks`, each with
its `text` and `embedding`, for a corpus embedded elsewhere (the model must be the
database's). Documents without chunks are chunked and embedded here, as an ingest
would.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np

from ragcorp_service.ingestion.chunking import Chunk, normalize_text
from ragcorp_service.ingestion.pipeline import Ingestor, clean_title, content_hash, embedding_input
from ragcorp_service.ingestion.store import ChunkedDocument, NewDocument, insert_documents

MERGE_EVERY_CHUNKS = 20_000
VECTOR_INDEX = "chunks_embedding_hnsw_idx"


class ImportLineError(ValueError):
    """A line of the input that cannot be imported, named by its number."""


@dataclass(frozen=True)
class ImportLine:
    number: int
    document: NewDocument
    chunks: list[Chunk] | None = None
    embeddings: list[np.ndarray] | None = None


@dataclass
class ImportReport:
    documents: int = 0
    already_stored: int = 0
    chunks: int = 0
    seconds_writing: float = 0.0
    seconds_index: float = 0.0


def read_lines(lines: Iterable[bytes], collection: str, dimensions: int) -> Iterator[ImportLine]:
    """Each non-blank line (UTF-8) as a document; a line that is not one raises ImportLineError naming it.

    Lines come as bytes and are decoded one at a time, so a file in another encoding is named by the
    first line that is not UTF-8 (a text-mode file fails somewhere in a buffer, with no line number)."""
    for number, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportLineError(f"line {number}: not UTF-8 (byte {exc.start} of the line)") from exc
        if not line.strip():
            continue
        try:
            yield _parse(number, json.loads(line), collection, dimensions)
        except (json.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
            raise ImportLineError(f"line {number}: {exc}") from exc


def _parse(number: int, record: dict[str, Any], collection: str, dimensions: int) -> ImportLine:
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise ValueError('each line must be a JSON object with a "text" string')
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError('"metadata" must be an object')
    text = normalize_text(record["text"])  # as an ingest stores it, so the two find each other's duplicates
    document = NewDocument(
        collection,
        clean_title(str(record.get("title") or "")),
        text,
        record.get("source"),
        metadata,
        content_hash(text),
    )
    if "chunks" not in record:
        return ImportLine(number, document)
    chunks, embeddings = [], []
    for chunk in record["chunks"]:
        vector = np.asarray(chunk["embedding"], dtype=np.float32)
        if vector.shape != (dimensions,):
            raise ValueError(f"an embedding has {vector.size} dimensions; the database's model has {dimensions}")
        chunks.append(Chunk(str(chunk["text"]), int(chunk.get("token_count", 0))))
        embeddings.append(vector)
    if not chunks:
        raise ValueError('"chunks" is empty')
    return ImportLine(number, document, chunks, embeddings)


async def prepared(
    lines: Iterable[ImportLine], ingestor: Ingestor, batch_documents: int
) -> AsyncIterator[list[ChunkedDocument]]:
    """Batches ready to store: lines without chunks chunked and embedded as an ingest would."""
    batch: list[ImportLine] = []
    for line in lines:
        batch.append(line)
        if len(batch) == batch_documents:
            yield await _embedded(batch, ingestor)
            batch = []
    if batch:
        yield await _embedded(batch, ingestor)


async def _embedded(batch: list[ImportLine], ingestor: Ingestor) -> list[ChunkedDocument]:
    chunked = [(line, line.chunks or ingestor.chunk(line.document.text)) for line in batch]
    wanted = [
        embedding_input(line.document.title, c) for line, chunks in chunked if line.embeddings is None for c in chunks
    ]
    vectors = iter(await ingestor.embed(wanted) if wanted else [])
    return [
        ChunkedDocument(line.document, chunks, line.embeddings or [next(vectors) for _ in chunks])
        for line, chunks in chunked
    ]


async def bulk_import(
    connection: asyncpg.Connection,
    batches: AsyncIterator[list[ChunkedDocument]],
    *,
    rebuild_index: bool = True,
    index_memory: str = "1GB",
    index_workers: int = max(1, (os.cpu_count() or 2) - 1),
) -> ImportReport:
    """Store every batch; with `rebuild_index` the HNSW index is dropped first and built once after,
    by `index_workers` parallel workers besides the leader (this host's cores by default: the
    embedded server's)."""
    report = ImportReport()
    definition = await _drop_vector_index(connection) if rebuild_index else None
    started = time.perf_counter()
    try:
        group: list[list[ChunkedDocument]] = []
        async for batch in batches:
            group.append(batch)
            if sum(len(item.chunks) for b in group for item in b) >= MERGE_EVERY_CHUNKS:
                await _store_group(connection, group, report)
                group = []
        await _store_group(connection, group, report)
    finally:
        report.seconds_writing = time.perf_counter() - started
        if definition is not None:
            started = time.perf_counter()
            await _build_index(connection, definition, index_memory, index_workers)
            report.seconds_index = time.perf_counter() - started
    return report


async def _store_group(
    connection: asyncpg.Connection, group: list[list[ChunkedDocument]], report: ImportReport
) -> None:
    """The group stored by one `insert_documents` and its postings put into blocks, in one transaction:
    no tail to write, index and delete again, and nothing half done if the import stops. One call for
    the whole group, not one per batch: the statistics' upsert costs about the same for 500 chunks as
    for 20,000 (at 11k chunks, 9 s a group as 40 calls, 0.8 s as one)."""
    documents = [item for batch in group for item in batch]
    if not documents:
        return
    async with connection.transaction():
        written = await insert_documents(connection, documents, tail=False)
        stored = [(record, item) for item, (record, new) in zip(documents, written, strict=True) if new]
        report.documents += len(stored)
        report.already_stored += len(documents) - len(stored)
        report.chunks += sum(len(item.chunks) for _, item in stored)
        await connection.execute("SELECT merge_postings($1::uuid[])", [record.id for record, _ in stored])


async def _drop_vector_index(connection: asyncpg.Connection) -> str | None:
    """Drop the HNSW index; its definition, to build it again (None when it was not there)."""
    definition: str | None = await connection.fetchval(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1", VECTOR_INDEX
    )
    if definition is not None:
        await connection.execute(f"DROP INDEX {VECTOR_INDEX}")
    return definition


async def _build_index(connection: asyncpg.Connection, definition: str, memory: str, workers: int) -> None:
    """The index as it was, built by `workers` parallel workers with `memory` to build in (pgvector's
    advice: a graph built in memory is built many times faster)."""
    async with connection.transaction():
        await connection.execute("SELECT set_config('maintenance_work_mem', $1, true)", memory)
        await connection.execute("SELECT set_config('max_parallel_maintenance_workers', $1, true)", str(workers))
        await connection.execute(definition)
    await connection.execute("ANALYZE chunks")
