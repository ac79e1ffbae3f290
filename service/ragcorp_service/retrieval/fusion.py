"""Reciprocal rank fusion: combine ranked lists by rank alone.

Vector similarities and BM25 scores live on unrelated scales, so fusing by rank
(Cormack et al., 2009) avoids calibrating one against the other. Lists come as
chunk ids: the fused top k's text is looked up once, after fusing, instead of
every candidate's in each list.
"""

from __future__ import annotations


def reciprocal_rank_fusion(rankings: list[list[int]], *, k: int, limit: int) -> list[tuple[int, float]]:
    """(chunk id, fused score) of the `limit` best, ties by chunk id: each chunk scores the sum of
    1 / (k + rank) over the lists it appears in."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, chunk_id in enumerate(ranking, 1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (k + rank)
    ordered = sorted(scores, key=lambda chunk_id: (-scores[chunk_id], chunk_id))
    return [(chunk_id, scores[chunk_id]) for chunk_id in ordered[:limit]]
