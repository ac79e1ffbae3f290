"""What the children must look like for a state: each colour's image and size, where the two
Services point, and which Job of the revision runs."""

from __future__ import annotations

from datetime import datetime

from ragcorp_operator.naming import Color
from ragcorp_operator.rollout.decision import Intent, JobIntent
from ragcorp_operator.rollout.inputs import DeploymentState, Observed, RolloutPolicy
from ragcorp_operator.rollout.state import RolloutState, config_of


def intent(state: RolloutState, wanted: int, observed: Observed) -> Intent:
    preview = state.target_color if state.phase in ("Verifying", "Promoting") else None
    deployments = _deployments(state, wanted, observed)
    return Intent(
        deployments=deployments,
        active_service_color=state.active_color,
        preview_service_color=preview or state.active_color,
        jobs=_jobs(state, observed.policy, observed.schema_job_elsewhere),
        configs={color: _config_of_color(state, color) for color in deployments},
        token_mounted=_token_mounted(state, observed, deployments),
    )


def _token_mounted(
    state: RolloutState, observed: Observed, deployments: dict[Color, tuple[str, int]]
) -> frozenset[Color]:
    """Colours rendered as they run, token and all: any but the one being rolled out now, whose
    Pods restart anyway (with the new template)."""
    rolling = state.target_color if state.phase in ("Deploying", "Verifying", "Promoting") else None
    running = observed.deployments
    return frozenset(c for c in deployments if c != rolling and running.get(c, DeploymentState()).mounts_token)


def _config_of_color(state: RolloutState, color: Color) -> str | None:
    """Each colour runs the config it was rolled out with: the previous colour keeps its own."""
    if color == state.target_color and state.target_image is not None:
        return state.target_config
    if color == state.active_color:
        return state.active_config
    if color == state.previous_color:
        return state.previous_config
    return None


def _deployments(state: RolloutState, wanted: int, observed: Observed) -> dict[Color, tuple[str, int]]:
    """colour -> (image, replicas); a colour absent is deleted."""
    policy = observed.policy
    deployments: dict[Color, tuple[str, int]] = {}
    if state.active_color and state.active_image:
        deployments[state.active_color] = (state.active_image, policy.replicas)
    deploying = state.phase in ("Deploying", "Verifying", "Promoting")
    if deploying and state.target_color and state.target_image:
        full = state.phase == "Promoting" and state.promotion_approved
        deployments[state.target_color] = (state.target_image, wanted if full else policy.preview_replicas or wanted)
    if aborted_colour_lingers(state, policy, observed.now):
        assert state.target_color is not None and state.target_image is not None
        lingering = _kept_size(observed, state.target_color, policy.preview_replicas or wanted)
        deployments.setdefault(state.target_color, (state.target_image, lingering))
    previous, previous_image = state.previous_color, state.previous_image
    if previous and previous_image and previous not in deployments:
        # The previous colour serves until the scale-down delay passes, then idles at zero
        # replicas (kept for an instant rollback) or goes away.
        if state.phase == "ScalingDown" or (state.phase == "Downgrading" and state.after_downgrade == "ScalingDown"):
            deployments[previous] = (previous_image, _kept_size(observed, previous, policy.replicas))
        elif policy.keep_previous:
            deployments[previous] = (previous_image, 0)
    return deployments


def _jobs(state: RolloutState, policy: RolloutPolicy, schema_job_elsewhere: bool) -> tuple[JobIntent, ...]:
    """The phase's Job (one at most); a schema Job waits while another revision's still runs."""
    phase, target = state.phase, state.target_image
    if phase == "BackingUp" and target:
        return (JobIntent("backup", state.revision, target, config=state.target_config),)
    if phase == "Migrating" and target and not schema_job_elsewhere:
        return (JobIntent("migrate", state.revision, target, config=state.target_config),)
    if phase == "Verifying" and target and policy.smoke_test_enabled:
        return (JobIntent("smoke", state.revision, target, state.schema_revision, state.target_config),)
    if phase == "Downgrading" and state.downgrade_image and not schema_job_elsewhere:
        image, to = state.downgrade_image, state.downgrade_to
        return (JobIntent("downgrade", state.revision, image, to, config_of(state, image)),)
    return ()


def _kept_size(observed: Observed, color: Color, floor: int) -> int:
    """A colour that served (or still may) keeps at least the size it has: the HPA may have grown
    it past the spec, and shrinking it while endpoints still send it traffic drops requests."""
    return max(floor, observed.deployments.get(color, DeploymentState()).replicas)


def aborted_colour_lingers(state: RolloutState, policy: RolloutPolicy, now: datetime) -> bool:
    """An aborted colour keeps running `abort_scale_down_delay` (its logs and Pods are what the
    user debugs with; after a failed post-promotion gate, it carried the traffic the Service is
    moving away from), never serving: the Services already point elsewhere. A downgrade on the
    way to Aborted counts too: traffic moves first, capacity goes after the delay."""
    aborting = state.phase == "Aborted" or (state.phase == "Downgrading" and state.after_downgrade == "Aborted")
    return (
        aborting
        and state.failure is not None
        and state.failure.step in ("Deploying", "Verifying", "Promoting", "ScalingDown")
        and state.target_color is not None
        and state.target_image is not None
        and state.target_color != state.active_color
        and state.step_started_at is not None
        and now - state.step_started_at < policy.abort_scale_down_delay
    )
