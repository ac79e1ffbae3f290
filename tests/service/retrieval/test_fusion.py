"""Hybrid's fusion ranks a chunk both lists found above chunks only one found, by rank alone."""

from __future__ import annotations

import pytest

from ragcorp_service.retrieval.fusion import reciprocal_rank_fusion


def test_a_chunk_in_both_lists_comes_first_and_ties_go_to_the_lower_id() -> None:
    fused = reciprocal_rank_fusion([[7, 3, 9], [5, 3, 8]], k=60, limit=4)
    assert [chunk_id for chunk_id, _ in fused] == [3, 5, 7, 8]  # 5 and 7 tie (first in one list), 8 and 9 too
    assert fused[0][1] == pytest.approx(2 / 62)
    assert fused[1][1] == fused[2][1] == pytest.approx(1 / 61)


def test_the_limit_cuts_the_fused_list_and_empty_lists_fuse_to_nothing() -> None:
    assert len(reciprocal_rank_fusion([list(range(50)), list(range(50, 100))], k=60, limit=10)) == 10
    assert reciprocal_rank_fusion([[], []], k=60, limit=10) == []
