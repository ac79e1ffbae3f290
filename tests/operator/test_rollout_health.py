"""`kubectl ragcorp status --timeout` reads health as Argo Rollouts' status does: Healthy,
Progressing, Paused, Degraded, and never the previous revision's health for a new spec."""

from __future__ import annotations

from typing import Any

import pytest

from ragcorp_operator.rollout_health import health


def resource(generation: int = 2, observed: int = 2, phase: str = "Idle", **status: Any) -> dict[str, Any]:
    conditions = status.pop("conditions", None) or [
        {"type": "Ready", "status": "True", "reason": "Serving", "message": "green serves app:2"},
        {"type": "Degraded", "status": "False", "reason": "AsExpected"},
    ]
    return {
        "metadata": {"name": "rag", "generation": generation},
        "status": {"phase": phase, "observedGeneration": observed, "conditions": conditions, **status},
    }


DEGRADED = [
    {"type": "Ready", "status": "True", "reason": "Serving"},
    {"type": "Degraded", "status": "True", "reason": "SmokeTestFailed", "message": "/v1/ask answered 500"},
]


@pytest.mark.parametrize(
    ("given", "verdict"),
    [
        (resource(), "Healthy"),
        (resource(phase="ScalingDown", verifiedAfterPromotion=True), "Healthy"),
        (resource(phase="ScalingDown", verifiedAfterPromotion=False), "Progressing"),
        (resource(phase="Deploying"), "Progressing"),
        (resource(phase="Aborted", conditions=DEGRADED), "Degraded"),
        (resource(phase="Verifying", pausedAt="2026-12-03T17:00:00+00:00"), "Paused"),
    ],
    ids=["idle", "switched-and-verified", "switched-gate-pending", "deploying", "aborted", "paused"],
)
def test_the_verdict_follows_phase_and_conditions(given: dict[str, Any], verdict: str) -> None:
    assert health(given).verdict == verdict


def test_a_spec_the_operator_has_not_read_is_progressing_not_the_last_revisions_health() -> None:
    """`kubectl apply` then `status --timeout`: the previous revision's Healthy (or its failure)
    must not end the wait before the operator has seen the new spec."""
    assert health(resource(generation=3, observed=2)).verdict == "Progressing"
    assert health(resource(generation=3, observed=2, phase="Aborted", conditions=DEGRADED)).verdict == "Progressing"


def test_an_unusable_spec_is_degraded_at_once() -> None:
    """An invalid spec is never observed (observedGeneration stays): waiting for it would only time out."""
    invalid = [{"type": "Degraded", "status": "True", "reason": "InvalidSpec", "message": "spec.replicas: too big"}]
    found = health(resource(generation=3, observed=2, conditions=invalid))
    assert found.verdict == "Degraded" and "spec.replicas" in found.message
