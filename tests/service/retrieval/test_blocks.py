"""The top k and the k-th score over a query's span are the ones a full sort gives, however sparse the span."""

from __future__ import annotations

import numpy as np
import pytest

from ragcorp_service.retrieval.blocks import Scores

SPAN = 50_000


def scores_with(rng: np.random.Generator, scored: int, distinct: int) -> Scores:
    """A span starting at chunk id 1000 with `scored` chunks scored, from `distinct` values (ties)."""
    scores = Scores(1000, 1000 + SPAN - 1)
    chosen = rng.choice(SPAN, scored, replace=False)
    scores.totals[chosen] = rng.integers(1, distinct + 1, scored) * 0.25
    return scores


def by_sorting(scores: Scores, k: int) -> tuple[list[int], list[float]]:
    """Every scored chunk sorted: score descending, then chunk id ascending."""
    ids = np.flatnonzero(scores.totals)
    order = sorted(ids, key=lambda i: (-scores.totals[i], i))[:k]
    return [int(i) + scores.base for i in order], [float(scores.totals[i]) for i in order]


@pytest.mark.parametrize(
    ("scored", "distinct"),
    [(0, 1), (3, 5), (40, 3), (900, 1000), (SPAN // 2, 50), (SPAN, 7)],
    ids=["none", "fewer-than-k", "ties-at-the-kth", "sparse", "half", "all-tied-in-groups"],
)
@pytest.mark.parametrize("k", [1, 10, 100])
def test_the_top_k_is_what_sorting_every_score_gives(scored: int, distinct: int, k: int) -> None:
    scores = scores_with(np.random.default_rng(scored + k), scored, distinct)
    ids, values = scores.top(k)
    assert (ids.tolist(), values.tolist()) == by_sorting(scores, k)
    expected_kth = sorted(scores.totals[scores.totals > 0])[-k] if scored >= k else 0.0
    assert scores.kth(k) == expected_kth
