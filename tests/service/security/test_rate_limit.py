"""Token buckets: a burst is allowed, then one request per 1/rate seconds."""

from __future__ import annotations

import pytest

from ragcorp_service.security.rate_limit import TokenBuckets, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    clock.now = 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0


def test_callers_have_separate_buckets() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, clock=Clock())
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    assert buckets.take("b") == 0.0


def test_full_buckets_are_forgotten_when_the_table_is_full() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=1.0, burst=1, clock=clock, max_keys=2)
    buckets.take("a")
    buckets.take("b")
    clock.now = 10
    buckets.take("c")
    assert len(buckets._buckets) == 1


def test_retry_after_is_a_whole_positive_number_of_seconds() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(2.2) == "3"
