"""Going back: `kubectl ragcorp rollback` (instant while the previous colour runs, else a rollout
of the old image), and `spec.image` put back to what serves (a GitOps revert), which is a rollback
too, never a rollout forward to an image whose `db upgrade` cannot know the newer schema."""

from __future__ import annotations

from dataclasses import replace

from ragcorp_operator.rollout.decision import Event
from ragcorp_operator.rollout.inputs import DeploymentState, JobKind, JobState, Observed
from ragcorp_operator.rollout.state import HistoryEntry, RolloutState, remember, same_revision
from ragcorp_operator.rollout.transitions import abort, downgrade_first, start, switch_traffic

#: Phases in which the new image has not yet taken traffic.
BEFORE_THE_SWITCH = frozenset({"BackingUp", "Migrating", "Deploying", "Verifying", "Promoting"})


def rollback_target(state: RolloutState, to: int) -> HistoryEntry | None:
    """A revision that served and was never aborted: one the post-promotion gate (or a person)
    aborted after its promotion is not a place to go back to. `to` 0 is the one before the active."""
    aborted = {h.revision for h in state.history if h.outcome == "aborted"}
    promoted = [h for h in state.history if h.outcome in ("promoted", "rolledBack") and h.revision not in aborted]
    if to == 0:
        candidates = [h for h in promoted if not _is_active(state, h)]
        return candidates[-1] if candidates else None
    return next((h for h in reversed(promoted) if h.revision == to), None)


def _is_active(state: RolloutState, entry: HistoryEntry) -> bool:
    return same_revision(entry.image, entry.config, state.active_image, state.active_config)


def rollback(observed: Observed, state: RolloutState, to: int, events: list[Event]) -> RolloutState:
    policy, now = observed.policy, observed.now
    entry = rollback_target(state, to)
    if entry is None or _is_active(state, entry):
        message = f"no promoted revision {to or 'before the active one'} to roll back to"
        events.append(Event("Warning", "RollbackRejected", message))
        return state
    held, held_config = state.active_image, state.active_config
    wants_schema = entry.schema_revision if policy.migrations_enabled else None
    previous = state.previous_color
    still_running = (
        previous is not None
        and same_revision(state.previous_image, state.previous_config, entry.image, entry.config)
        and observed.deployments.get(previous, DeploymentState()).ready_at(entry.image, policy.replicas)
    )
    if not still_running:
        state = replace(state, held_image=held, held_config=held_config)
        state = start(observed, state, entry.image, entry.config, events, rollback=True)
        return downgrade_first(state, wants_schema, "Deploying", state.active_image, events) or state
    assert previous is not None
    message = f"traffic switched back to {previous} ({entry.image}) instantly"
    events.append(Event("Normal", "RolledBack", message, ("rolledBack",)))
    newer_image = state.active_image
    config = state.previous_config or entry.config
    restored = HistoryEntry(
        state.revision + 1, entry.image, entry.schema_revision, "rolledBack", now.isoformat(), config=config
    )
    state = switch_traffic(state, previous, entry.image, config, now)
    state = replace(
        state,
        revision=state.revision + 1,
        held_image=held,
        held_config=held_config,
        failure=None,
        # The restored revision already served: the post-promotion gate of the one rolled back
        # from must not judge it, nor move traffic back to what the user left.
        verified_after_promotion=True,
        history=remember(state, restored, policy.history_limit),
    )
    return downgrade_first(state, wants_schema, "ScalingDown", newer_image, events) or replace(
        state, phase="ScalingDown"
    )


def drop_reverted_failure(observed: Observed, state: RolloutState, events: list[Event]) -> RolloutState:
    """After an abort, spec.image put back to what serves drops the failed rollout (no longer
    reported as failing)."""
    image, config = observed.policy.image, observed.policy.config
    is_active = same_revision(image, config, state.active_image, state.active_config)
    if (
        state.phase != "Aborted"
        or not is_active
        or same_revision(image, config, state.target_image, state.target_config)
    ):
        return state
    events.append(Event("Normal", "RolloutDropped", f"spec.image is {image} again; {state.target_image} dropped"))
    return replace(
        state,
        phase="Idle",
        target_color=None,
        target_image=None,
        target_config=None,
        failure=None,
        step_started_at=observed.now,
    )


def migration_unrecorded(jobs: dict[JobKind, JobState]) -> bool:
    """A migration still running, or finished in this very pass: its revision must be recorded
    (by the Migrating step) before an abort acts, or status would name a schema the database left."""
    return jobs.get("migrate", JobState()).phase in ("running", "succeeded")


def on_revert(observed: Observed, state: RolloutState, events: list[Event]) -> RolloutState:
    """`spec.image` put back to the image that served (a GitOps revert) is a rollback, never a
    rollout: before the switch the rollout aborts (the schema downgraded when it was migrated and
    `downgradeOnAbort` is set; a running migration first finishes), so the reverted image never
    takes traffic; after the switch, while the previous colour still runs, traffic goes back to it
    at once, the schema with it."""
    image, config = observed.policy.image, observed.policy.config

    def spec_is(other_image: str | None, other_config: str | None) -> bool:
        return same_revision(image, config, other_image, other_config)

    reverted_after_switch = (
        spec_is(state.previous_image, state.previous_config)
        and not spec_is(state.active_image, state.active_config)
        and not spec_is(state.held_image, state.held_config)
    )
    if state.phase == "ScalingDown" and reverted_after_switch:
        events.append(Event("Normal", "Reverted", f"spec.image is {image} again: rolling back to it"))
        return rollback(observed, state, 0, events)
    reverted_before_switch = state.phase in BEFORE_THE_SWITCH and spec_is(state.active_image, state.active_config)
    # A rollback holds the spec's newer image on purpose (`held_image`): that is no revert.
    if (
        not reverted_before_switch
        or spec_is(state.target_image, state.target_config)
        or spec_is(state.held_image, state.held_config)
    ):
        return state
    if state.phase == "Migrating" and migration_unrecorded(observed.jobs):
        if not state.abort_requested:
            message = f"spec.image is {image} again: aborting once the migration finishes"
            events.append(Event("Normal", "AbortPending", message))
        return replace(state, abort_requested=True)
    message = f"spec.image is {image} again: {state.target_image} dropped before it took traffic"
    return abort(observed, state, state.phase, "Reverted", message, events)
