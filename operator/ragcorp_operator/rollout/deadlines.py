"""When time alone can change the next decision: the reconciler sleeps until then unless an event
(a Job finishing, replicas turning ready, an edit) wakes it sooner."""

from __future__ import annotations

from datetime import datetime, timedelta

from ragcorp_operator.rollout.analysis import running_checks
from ragcorp_operator.rollout.inputs import RolloutPolicy
from ragcorp_operator.rollout.intent import aborted_colour_lingers
from ragcorp_operator.rollout.metric_checks import next_due
from ragcorp_operator.rollout.state import RolloutState

#: How often a running metric gate asks Prometheus again.
GATE_POLL = timedelta(seconds=15)


#: How often a migration waits to see another one's Pod gone (Pods are not watched).
SCHEMA_JOB_POLL = timedelta(seconds=2)


def next_wakeup(
    state: RolloutState, policy: RolloutPolicy, now: datetime, schema_job_elsewhere: bool = False
) -> timedelta | None:
    """When time alone can change the next decision (a timeout, a gate's window, the scale-down
    delay); None when only an event can. Events (a Job finishing, replicas turning ready, an
    edit) wake the reconciler sooner; this is what it sleeps for otherwise."""
    if policy.paused:  # nothing advances while paused: only an edit (the resume) wakes it
        return None
    due: list[datetime] = []
    started = state.step_started_at
    after_switch = state.phase == "ScalingDown" and not state.verified_after_promotion
    gate_polls = policy.gate_enabled and (state.phase == "Verifying" or (after_switch and policy.gate_after_promotion))
    if state.phase == "Deploying" and started:
        due.append(started + policy.ready_timeout)
    if gate_polls and started:
        window_end = ((state.promoted_at if state.phase == "ScalingDown" else started) or started) + policy.gate_window
        due.append(window_end if window_end > now else now + GATE_POLL)
    if running := running_checks(state, policy):
        measurement = next_due(*running)
        if measurement is not None:
            due.append(measurement if measurement > now else now + GATE_POLL)
    if state.phase == "ScalingDown" and state.promoted_at:
        due.append(state.promoted_at + policy.scale_down_delay)
    if state.phase == "Promoting" and policy.auto_promotion_after is not None and started:
        due.append(started + policy.auto_promotion_after)
    if aborted_colour_lingers(state, policy, now) and started:
        due.append(started + policy.abort_scale_down_delay)
    if schema_job_elsewhere and state.phase in ("Migrating", "Downgrading"):
        due.append(now + SCHEMA_JOB_POLL)
    # A deadline already passed was weighed by the decision this pass just made; waking for it again
    # at once would spin (the scale-down delay over, say, while the post-promotion gate still waits).
    upcoming = [moment for moment in due if moment > now]
    if not upcoming:
        return None
    return min(upcoming) - now
