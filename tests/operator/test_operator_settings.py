"""The operator's own settings: which replica leads."""

from __future__ import annotations

from ragcorp_operator.operator_settings import start_priority

STARTED = 1_796_000_000.0  # 2026-12-01


def test_the_longest_running_replica_outranks_any_started_later() -> None:
    """A replica restarted mid-rollout (a new Pod, a crash) must not preempt the one leading it."""
    leader = start_priority(STARTED, jitter=0)
    assert start_priority(STARTED + 0.001, jitter=0) < leader
    assert start_priority(STARTED + 3600, jitter=1023) < leader
    assert start_priority(STARTED + 0.001, jitter=0) < start_priority(STARTED, jitter=1023)


def test_replicas_started_in_the_same_millisecond_do_not_share_a_priority() -> None:
    """kopf pauses every peer that shares the highest priority."""
    assert len({start_priority(STARTED, jitter) for jitter in range(1024)}) == 1024
    assert 0 < start_priority(STARTED, jitter=0) < 2**53
