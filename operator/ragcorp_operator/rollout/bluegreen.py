"""The blue/green steps after the schema: the standby colour turns ready, is verified, takes the
traffic, and the previous colour goes once the post-promotion gate and the delay allow."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from ragcorp_operator.rollout import analysis
from ragcorp_operator.rollout.decision import Event
from ragcorp_operator.rollout.inputs import DeploymentState, JobKind, JobState, Observed
from ragcorp_operator.rollout.state import Failure, HistoryEntry, RolloutState, remember
from ragcorp_operator.rollout.transitions import abort, downgrade_first, switch_traffic


def deploy(observed: Observed, state: RolloutState, wanted: int, events: list[Event]) -> RolloutState:
    """Deploying -> Verifying once the standby colour is ready at the preview's size; aborted at the timeout."""
    policy, now = observed.policy, observed.now
    assert state.target_color is not None and state.target_image is not None
    standby = observed.deployments.get(state.target_color, DeploymentState())
    if standby.ready_at(state.target_image, policy.preview_replicas or wanted):
        events.append(Event("Normal", "StandbyReady", f"{state.target_color} is ready with {state.target_image}"))
        return replace(state, phase="Verifying", step_started_at=now)
    if state.step_started_at and now - state.step_started_at > policy.ready_timeout:
        message = f"{state.target_color} not ready within {int(policy.ready_timeout.total_seconds())}s"
        return abort(observed, state, "Deploying", "NotReady", message, events)
    return state


def verify(observed: Observed, state: RolloutState, jobs: dict[JobKind, JobState], events: list[Event]) -> RolloutState:
    """Verifying -> Promoting once the smoke test passed and the analysis (the metric gate, the
    team's checks) judged the preview. Checks are measured while the smoke test runs; a failed one
    aborts at once."""
    policy, now = observed.policy, observed.now
    verdict, state = analysis.judge_stage(observed, state, policy.gate_enabled, "the preview", events)
    smoke = jobs.get("smoke", JobState())
    if policy.smoke_test_enabled and smoke.phase == "failed":
        message = smoke.message or "the smoke test failed"
        return abort(observed, state, "Verifying", "SmokeTestFailed", message, events)
    if verdict.outcome == "fail":
        return abort(observed, state, "Verifying", verdict.reason, verdict.message, events)
    if (policy.smoke_test_enabled and smoke.phase != "succeeded") or verdict.outcome == "wait":
        return state
    events.append(Event("Normal", "Verified", f"{state.target_image} passed verification"))
    return replace(state, phase="Promoting", step_started_at=now)


def promote(observed: Observed, state: RolloutState, promote_requested: bool) -> RolloutState:
    """Promotion approved by autoPromote, its timer or a request; remembered until the new colour
    can take traffic (`switch_when_ready`)."""
    policy, now = observed.policy, observed.now
    waited = now - state.step_started_at if state.step_started_at else timedelta(0)
    auto = policy.auto_promote or (policy.auto_promotion_after is not None and waited >= policy.auto_promotion_after)
    if (auto or promote_requested) and not state.promotion_approved:
        return replace(state, promotion_approved=True)
    return state


def switch_when_ready(observed: Observed, state: RolloutState, wanted: int, events: list[Event]) -> RolloutState:
    """Promote once the new colour passes `kubectl rollout status` at the full count (a preview
    runs fewer; the HPA may have grown the old colour since): never onto unready Pods."""
    policy, now = observed.policy, observed.now
    assert state.target_color is not None and state.target_image is not None
    standby = observed.deployments.get(state.target_color, DeploymentState())
    if not standby.ready_at(state.target_image, wanted):
        return state
    message = f"traffic switched to {state.target_color} ({state.target_image})"
    events.append(Event("Normal", "Promoted", message, ("promoted",)))
    entry = HistoryEntry(
        state.revision,
        state.target_image,
        state.schema_revision,
        "rolledBack" if state.rollback else "promoted",
        now.isoformat(),
        config=state.target_config,
    )
    had_traffic = state.active_color is not None
    state = switch_traffic(state, state.target_color, state.target_image, state.target_config, now)
    return replace(
        state,
        phase="ScalingDown" if had_traffic else "Idle",
        target_color=None,
        target_image=None,
        target_config=None,
        promotion_approved=False,
        history=remember(state, entry, policy.history_limit),
        # Only a rollout with a previous colour to return to can be rolled back by its analysis.
        verified_after_promotion=not (analysis.judged_after_promotion(policy) and had_traffic),
    )


def after_promotion(observed: Observed, state: RolloutState, events: list[Event]) -> RolloutState:
    """The previous colour serves until the post-promotion gate passed and the delay is over, and
    only goes once the active Service is seen on the new colour (with no delay at all, traffic
    must have moved before the old Pods stop)."""
    policy, now = observed.policy, observed.now
    if not state.verified_after_promotion:
        gate_judged = policy.gate_enabled and policy.gate_after_promotion
        verdict, state = analysis.judge_stage(observed, state, gate_judged, "the active Service", events)
        if verdict.outcome == "fail":
            return _roll_back_after_promotion(observed, state, verdict.message, events)
        if verdict.outcome == "wait":
            return state
        message = f"{state.active_image} passed its post-promotion analysis"
        events.append(Event("Normal", "VerifiedAfterPromotion", message))
        state = replace(state, verified_after_promotion=True)
    delay_over = state.promoted_at is not None and now - state.promoted_at >= policy.scale_down_delay
    switched = observed.serving_color == state.active_color
    if delay_over and switched:
        events.append(Event("Normal", "ScaledDown", f"previous colour {state.previous_color} scaled down"))
        state = replace(state, phase="Idle", step_started_at=now)
    return state


def _roll_back_after_promotion(observed: Observed, state: RolloutState, why: str, events: list[Event]) -> RolloutState:
    """The gate failed on real traffic: traffic back to the previous colour (still running), and
    the schema back to what it served on, with the newer image that knows both revisions."""
    policy, now = observed.policy, observed.now
    assert state.previous_color is not None and state.previous_image is not None
    bad_color, bad_image, bad_config = state.active_color, state.active_image, state.active_config
    message = f"{bad_image} failed its post-promotion analysis ({why}); traffic back on {state.previous_color}"
    events.append(Event("Warning", "PostPromotionGateFailed", message, ("aborted",)))
    entry = HistoryEntry(
        state.revision,
        bad_image or "",
        state.schema_revision,
        "aborted",
        now.isoformat(),
        "PostPromotionGateFailed",
        bad_config,
    )
    state = switch_traffic(state, state.previous_color, state.previous_image, state.previous_config, now)
    state = replace(
        state,
        target_color=bad_color,
        target_image=bad_image,
        target_config=bad_config,
        held_image=None,
        held_config=None,
        failure=Failure("ScalingDown", "PostPromotionGateFailed", message),
        verified_after_promotion=True,
        history=remember(state, entry, policy.history_limit),
    )
    if policy.migrations_enabled and state.migrated:
        return downgrade_first(state, state.base_schema_revision, "Aborted", bad_image, events) or replace(
            state, phase="Aborted"
        )
    return replace(state, phase="Aborted")
