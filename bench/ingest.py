"""Ingest throughput: the whole pipeline through the service beside the bare embedder,
on the same chunk texts, in the same run (the embedder is the limit on CPU)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from ragcorp_service.client.beir import read_corpus
from ragcorp_service.ingestion.chunking import chunk_text
from ragcorp_service.ingestion.pipeline import embedding_input
from ragcorp_service.providers.embedders import LocalEmbedder
from ragcorp_service.settings import Settings


def chunk_inputs(documents: Sequence[dict[str, Any]], embedder: LocalEmbedder) -> list[str]:
    """Exactly what the service embeds for these documents (same chunker, same settings)."""
    settings = Settings(database_url=None, api_keys=None, google_api_key=None)
    inputs = []
    for document in documents:
        for chunk in chunk_text(
            document["text"],
            max_tokens=settings.chunk_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
            count_tokens=embedder.count_tokens,
        ):
            inputs.append(embedding_input(document["title"], chunk))
    return inputs


def bare_embedder(embedder: LocalEmbedder, inputs: list[str]) -> float:
    """Chunks per second for sentence-transformers alone (one warm-up batch first)."""
    embedder.encode(inputs[:64])
    started = time.perf_counter()
    embedder.encode(inputs)
    return len(inputs) / (time.perf_counter() - started)


async def pipeline(
    url: str, documents: list[dict[str, Any]], batch_size: int = 32, concurrency: int = 2
) -> tuple[float, int]:
    """(chunks per second, chunks) for POST /v1/documents into a scratch collection, removed afterwards."""
    collection = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    payloads = [{**d, "collection": collection} for d in documents]
    batches = [payloads[i : i + batch_size] for i in range(0, len(payloads), batch_size)]
    limiter = asyncio.Semaphore(concurrency)
    stored: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:

        async def send(batch: list[dict[str, Any]]) -> None:
            async with limiter:
                response = await client.post("/v1/documents/batch", json={"documents": batch})
                response.raise_for_status()
                stored.extend(response.json()["documents"])

        started = time.perf_counter()
        await asyncio.gather(*(send(batch) for batch in batches))
        elapsed = time.perf_counter() - started
        chunks = sum(int(d["chunk_count"]) for d in stored)
        for document in stored:
            (await client.delete(f"/v1/documents/{document['id']}")).raise_for_status()
    return chunks / elapsed, chunks


async def measure(url: str, corpus: Path, embedder: LocalEmbedder, documents: int) -> dict[str, Any]:
    sample = [d for _, d in zip(range(documents), read_corpus(corpus), strict=False)]
    inputs = chunk_inputs(sample, embedder)
    bare = bare_embedder(embedder, inputs)
    through_service, chunks = await pipeline(url, sample)
    return {
        "documents": len(sample),
        "chunks": chunks,
        "embedder_chunks_per_s": round(bare, 1),
        "pipeline_chunks_per_s": round(through_service, 1),
        "pipeline_share_of_embedder": round(through_service / bare, 3),
    }
