"""The evaluation metrics agree with hand-computed values."""

from __future__ import annotations

import math

import pytest

from ragcorp_service.client.ranking_metrics import documents_by_best_chunk, mrr_at_k, ndcg_at_k, recall_at_k


def test_ndcg_rewards_relevant_documents_near_the_top() -> None:
    relevant = {"a": 1, "b": 1}
    assert ndcg_at_k(["a", "b", "x"], relevant, 10) == pytest.approx(1.0)
    expected = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["x", "a", "b"], relevant, 10) == pytest.approx(expected)
    assert ndcg_at_k(["x", "y"], relevant, 10) == 0.0
    assert ndcg_at_k(["x", "a"], relevant, 1) == 0.0


def test_recall_and_mrr() -> None:
    relevant = {"a": 1, "b": 1, "c": 0}
    assert recall_at_k(["a", "c", "x"], relevant, 100) == 0.5
    assert mrr_at_k(["x", "y", "b"], relevant, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["c"], relevant, 10) == 0.0


def test_documents_are_ranked_by_their_best_chunk() -> None:
    hits = [("d1", 0.9), ("d2", 0.8), ("d1", 0.7), ("d3", 0.95)]
    assert documents_by_best_chunk(hits) == ["d3", "d1", "d2"]
