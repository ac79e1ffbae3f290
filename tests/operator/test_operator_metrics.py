"""The operator's rollout metrics, counted from what the machine says."""

from __future__ import annotations

from ragcorp_operator.operator_metrics import OperatorMetrics, PhaseClock
from ragcorp_operator.rollout import Event


def test_aborts_and_rollbacks_are_counted_by_reason_from_their_triggers() -> None:
    metrics = OperatorMetrics()
    for event in (
        Event("Warning", "PostPromotionGateFailed", "traffic back on blue", ("aborted",)),
        Event("Normal", "RolledBack", "traffic switched back to blue", ("rolledBack",)),
        Event("Normal", "Promoted", "traffic switched to green", ("promoted",)),
        Event("Normal", "StandbyReady", "green is ready"),
    ):
        metrics.count_event("prod", "rag", event)
    value = metrics.registry.get_sample_value
    assert (
        value(
            "ragcorp_operator_aborts_total", {"namespace": "prod", "name": "rag", "reason": "PostPromotionGateFailed"}
        )
        == 1
    )
    assert value("ragcorp_operator_rollbacks_total", {"namespace": "prod", "name": "rag", "reason": "RolledBack"}) == 1
    assert value("ragcorp_operator_aborts_total", {"namespace": "prod", "name": "rag", "reason": "Promoted"}) is None


def test_a_deleted_resource_leaves_no_phase_series_behind() -> None:
    metrics, clock = OperatorMetrics(), PhaseClock()
    metrics.see_phase("prod", "rag", "Verifying", clock)
    assert (
        metrics.registry.get_sample_value(
            "ragcorp_operator_rollout_phase", {"name": "rag", "namespace": "prod", "phase": "Verifying"}
        )
        == 1
    )
    metrics.forget("prod", "rag")
    assert (
        metrics.registry.get_sample_value(
            "ragcorp_operator_rollout_phase", {"name": "rag", "namespace": "prod", "phase": "Verifying"}
        )
        is None
    )
