"""A synthetic corpus grown to 100k chunks from SciFact's own chunks, written through the
service's store (the same INSERTs, posting list and statistics as an ingest), embedding aside.

Each synthetic chunk mixes the sentences of two real chunks and gets their blended, jittered
embedding, so the vectors and the vocabulary keep SciFact's distribution (random vectors
would make HNSW's job unrealistically hard, repeated ones unrealistically easy).
"""

from __future__ import annotations

import re
import time
from typing import Any

import asyncpg
import numpy as np

from ragcorp_service.ingestion.chunking import Chunk
from ragcorp_service.ingestion.pipeline import content_hash
from ragcorp_service.ingestion.store import NewDocument, insert_document

COLLECTION = "synthetic"
CHUNKS_PER_DOCUMENT = 8
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


async def chunk_count(connection: asyncpg.Connection) -> int:
    return int(await connection.fetchval("SELECT count(*) FROM chunks"))


async def grow_to(database_url: str, target: int, seed: int = 7) -> dict[str, Any]:
    """Add synthetic chunks until the database holds `target`; returns the write throughput."""
    from pgvector.asyncpg import register_vector

    connection = await asyncpg.connect(database_url)
    await register_vector(connection)
    try:
        missing = target - await chunk_count(connection)
        if missing <= 0:
            return {"chunks": await chunk_count(connection), "added": 0}
        rows = await connection.fetch("SELECT text, token_count, embedding FROM chunks WHERE collection = 'scifact'")
        texts = [r["text"] for r in rows]
        tokens = np.array([r["token_count"] for r in rows])
        vectors = np.stack([np.asarray(r["embedding"].to_numpy(), dtype=np.float32) for r in rows])
        rng = np.random.default_rng(seed)
        started = time.perf_counter()
        added = 0
        while added < missing:
            n = min(CHUNKS_PER_DOCUMENT, missing - added)
            picks = rng.integers(0, len(texts), size=(n, 2))
            chunks, embeddings = [], []
            for a, b in picks:
                sentences = _SENTENCE.split(texts[a]) + _SENTENCE.split(texts[b])[:2]
                rng.shuffle(sentences)
                chunks.append(Chunk(" ".join(sentences), int(tokens[a] + tokens[b] // 3)))
                blended = (
                    vectors[a] + 0.5 * vectors[b] + np.asarray(rng.normal(0, 0.02, vectors.shape[1]), dtype=np.float32)
                )
                embeddings.append(blended / np.linalg.norm(blended))
            body = "\n\n".join(c.text for c in chunks)
            document = NewDocument(
                collection=COLLECTION,
                title=f"Synthetic {added}",
                text=body,
                source=None,
                metadata={"synthetic": True},
                content_sha256=content_hash(f"{added}:{body}"),
            )
            await insert_document(connection, document, chunks, embeddings)
            added += n
        elapsed = time.perf_counter() - started
        return {
            "chunks": await chunk_count(connection),
            "added": added,
            "write_chunks_per_s": round(added / elapsed, 1),
        }
    finally:
        await connection.close()
