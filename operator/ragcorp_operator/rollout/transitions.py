"""The transitions every step shares: start a rollout, abort one, move traffic between colours.

Each takes the state and returns the next one, appending what people should hear to `events`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from ragcorp_operator.naming import Color, other
from ragcorp_operator.rollout.decision import Event, Trigger
from ragcorp_operator.rollout.inputs import Observed
from ragcorp_operator.rollout.state import IN_FLIGHT, Failure, HistoryEntry, Phase, RolloutState, remember


def start(
    observed: Observed,
    state: RolloutState,
    image: str,
    config: str | None,
    events: list[Event],
    rollback: bool = False,
) -> RolloutState:
    """A new revision of `image` with pod `config` on the standby colour; a rollout in flight is
    recorded as superseded."""
    policy, now = observed.policy, observed.now
    if state.phase in IN_FLIGHT and state.target_image:  # ScalingDown and Idle have no target
        events.append(Event("Normal", "Superseded", f"rollout of {state.target_image} superseded by {image}"))
        entry = HistoryEntry(
            state.revision,
            state.target_image,
            state.schema_revision,
            "superseded",
            now.isoformat(),
            config=state.target_config,
        )
        state = replace(state, history=remember(state, entry, policy.history_limit))
    if state.phase == "ScalingDown":  # the previous colour is done serving; finish that first
        state = replace(state, phase="Idle")
    target_color: Color = other(state.active_color) if state.active_color else "blue"
    first: Phase
    if rollback:
        first = "Deploying"
    elif policy.backup_enabled and state.active_image:
        first = "BackingUp"
    elif policy.migrations_enabled:
        first = "Migrating"
    else:
        first = "Deploying"
    kind = "RollbackStarted" if rollback else "RolloutStarted"
    message = f"rolling out {image} to {target_color} (revision {state.revision + 1})"
    events.append(Event("Normal", kind, message, ("rolledBack",) if rollback else ("started",)))
    return replace(
        state,
        phase=first,
        revision=state.revision + 1,
        target_color=target_color,
        target_image=image,
        target_config=config,
        base_schema_revision=state.schema_revision,
        migrated=False,
        rollback=rollback,
        held_image=None if not rollback else state.held_image,
        held_config=None if not rollback else state.held_config,
        step_started_at=now,
        failure=None,
        analysis=(),  # the last revision's results go: status shows this revision's analysis only
        downgrade_to=None,
        after_downgrade=None,
        downgrade_image=None,
        abort_requested=False,
        promotion_approved=False,
    )


def abort(
    observed: Observed, state: RolloutState, step: str, reason: str, message: str, events: list[Event]
) -> RolloutState:
    """Traffic stays where it is; the schema goes back first when the rollout migrated it and
    `downgradeOnAbort` is set."""
    policy, now = observed.policy, observed.now
    triggers: tuple[Trigger, ...] = ("aborted", "migrationFailed") if reason == "MigrationFailed" else ("aborted",)
    events.append(Event("Warning", reason, f"rollout of {state.target_image} aborted at {step}: {message}", triggers))
    entry = HistoryEntry(
        state.revision,
        state.target_image or "",
        state.schema_revision,
        "aborted",
        now.isoformat(),
        reason,
        state.target_config,
    )
    state = replace(
        state,
        failure=Failure(step, reason, message),
        step_started_at=now,
        history=remember(state, entry, policy.history_limit),
        abort_requested=False,
        promotion_approved=False,
    )
    if policy.downgrade_on_abort and state.migrated:
        return downgrade_first(state, state.base_schema_revision, "Aborted", state.target_image, events) or replace(
            state, phase="Aborted"
        )
    return replace(state, phase="Aborted")


def downgrade_first(
    state: RolloutState, to: str | None, then: Phase, image: str | None, events: list[Event]
) -> RolloutState | None:
    """Downgrading the schema to `to` with `image` (the newest one, which knows both revisions),
    then `then`; None when there is nothing to downgrade to or the schema is already there."""
    if not to or to == state.schema_revision:
        return None
    events.append(Event("Normal", "DowngradeStarted", f"downgrading the schema to {to}"))
    return replace(state, phase="Downgrading", downgrade_to=to, after_downgrade=then, downgrade_image=image)


def switch_traffic(state: RolloutState, color: Color, image: str, config: str | None, now: datetime) -> RolloutState:
    """The active Service on `color`; the colour it leaves becomes the previous one (kept for an
    instant rollback until the scale-down delay has passed)."""
    return replace(
        state,
        active_color=color,
        active_image=image,
        active_config=config,
        previous_color=state.active_color,
        previous_image=state.active_image,
        previous_config=state.active_config,
        promoted_at=now,
        step_started_at=now,
    )
