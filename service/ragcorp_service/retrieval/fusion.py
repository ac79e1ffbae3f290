"""Reciprocal rank fusion: combine ranked lists by rank alone.

Vector similarities and BM25 scores live on unrelated scales, so fusing by rank
(Cormack et al., 2009) avoids calibrating one against the other.
"""

from __future__ import annotations

from dataclasses import replace

from ragcorp_service.retrieval.results import RetrievedChunk


def reciprocal_rank_fusion(rankings: list[list[RetrievedChunk]], *, k: int, limit: int) -> list[RetrievedChunk]:
    """Score each chunk by the sum of 1 / (k + rank) over the lists it appears in."""
    scores: dict[int, float] = {}
    chunks: dict[int, RetrievedChunk] = {}
    for ranking in rankings:
        for rank, chunk in enumerate(ranking, 1):
            scores[chunk.chunk_id] = scores.get(chunk.chunk_id, 0.0) + 1.0 / (k + rank)
            chunks.setdefault(chunk.chunk_id, chunk)
    ordered = sorted(scores, key=lambda chunk_id: (-scores[chunk_id], chunk_id))
    return [replace(chunks[chunk_id], score=scores[chunk_id]) for chunk_id in ordered[:limit]]
