"""The steps that wait on a Job of the revision: backup, migration, downgrade (the smoke test is
verification's, in `bluegreen`), what each waits for in words, and when a Job that never started
is given up on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from types import MappingProxyType

from ragcorp_operator.rollout.decision import Event
from ragcorp_operator.rollout.inputs import JobKind, JobState, Observed, RolloutPolicy
from ragcorp_operator.rollout.state import Failure, Phase, RolloutState
from ragcorp_operator.rollout.transitions import abort

#: The Job each phase waits on.
JOB_OF_PHASE: Mapping[str, JobKind] = MappingProxyType(
    {
        "BackingUp": "backup",
        "Migrating": "migrate",
        "Downgrading": "downgrade",
        "Verifying": "smoke",
    }
)
#: How long past a Job's own deadline a Job that never started (quota, an admission webhook, another
#: migration's Pod stuck Terminating) is waited for before the step gives up.
JOB_START_GRACE = timedelta(minutes=2)


def back_up(
    observed: Observed, state: RolloutState, jobs: dict[JobKind, JobState], events: list[Event]
) -> RolloutState:
    job = jobs.get("backup", JobState())
    if job.phase == "succeeded":
        events.append(Event("Normal", "BackupSucceeded", f"database backed up before revision {state.revision}"))
        after_backup: Phase = "Migrating" if observed.policy.migrations_enabled else "Deploying"
        return replace(state, phase=after_backup, step_started_at=observed.now)
    if job.phase == "failed":
        return abort(observed, state, "BackingUp", "BackupFailed", job.message or "the backup Job failed", events)
    return state


def migrate(
    observed: Observed, state: RolloutState, jobs: dict[JobKind, JobState], events: list[Event]
) -> RolloutState:
    """The schema revision the Job reports is recorded before anything else acts on it (an abort
    asked while it ran takes effect now, and downgrades from there)."""
    job = jobs.get("migrate", JobState())
    if job.phase == "succeeded":
        events.append(Event("Normal", "MigrationSucceeded", f"schema at revision {job.schema_revision}"))
        state = replace(
            state, phase="Deploying", schema_revision=job.schema_revision, migrated=True, step_started_at=observed.now
        )
        if state.abort_requested:
            return abort(observed, state, "Migrating", "ManualAbort", "aborted by request", events)
        return state
    if job.phase == "failed":
        return abort(observed, state, "Migrating", "MigrationFailed", job.message or "the migration Job failed", events)
    return state


def downgrade(
    observed: Observed, state: RolloutState, jobs: dict[JobKind, JobState], events: list[Event]
) -> RolloutState:
    job = jobs.get("downgrade", JobState())
    if job.phase == "succeeded":
        events.append(Event("Normal", "DowngradeSucceeded", f"schema at revision {job.schema_revision}"))
        next_phase = state.after_downgrade or "Aborted"
        return replace(state, phase=next_phase, schema_revision=job.schema_revision, step_started_at=observed.now)
    if job.phase == "failed":
        return _downgrade_failed(observed, state, "DowngradeFailed", job.message or "the downgrade Job failed", events)
    return state


def _downgrade_failed(
    observed: Observed, state: RolloutState, reason: str, message: str, events: list[Event]
) -> RolloutState:
    events.append(Event("Warning", reason, message))
    failure = Failure("Downgrading", reason, message)
    return replace(state, phase="Aborted", failure=failure, step_started_at=observed.now)


def awaited_job(state: RolloutState, policy: RolloutPolicy) -> JobKind | None:
    """The Job the phase waits on, if any (Verifying has none with the smoke test off)."""
    kind = JOB_OF_PHASE.get(state.phase)
    return None if kind == "smoke" and not policy.smoke_test_enabled else kind


def job_deadline(policy: RolloutPolicy, kind: JobKind) -> timedelta:
    return (policy.smoke_timeout if kind == "smoke" else policy.job_timeout) + JOB_START_GRACE


def job_never_started(
    observed: Observed, state: RolloutState, jobs: dict[JobKind, JobState], events: list[Event]
) -> RolloutState:
    """A step whose Job was never seen gives up after the Job's own deadline and a grace: a Job
    that runs is bounded by `activeDeadlineSeconds`, one that never starts by this."""
    policy, now = observed.policy, observed.now
    kind = awaited_job(state, policy)
    if kind is None or state.step_started_at is None or jobs.get(kind, JobState()).phase != "missing":
        return state
    deadline = job_deadline(policy, kind)
    if now - state.step_started_at <= deadline:
        return state
    what = waiting_for(state, policy, jobs, observed.schema_job_elsewhere, 0)
    message = f"waited {int(deadline.total_seconds())}s for {what}"
    if state.phase == "Downgrading":
        return _downgrade_failed(observed, state, "DowngradeNotStarted", message, events)
    return abort(observed, state, state.phase, "JobNotStarted", message, events)


def waiting_for(
    state: RolloutState,
    policy: RolloutPolicy,
    jobs: dict[JobKind, JobState],
    schema_job_elsewhere: bool,
    wanted: int,
) -> str:
    """What the phase waits for, for people: the Progressing condition's message."""
    kind = awaited_job(state, policy)
    if kind is not None:
        phase = jobs.get(kind, JobState()).phase
        if phase == "missing" and schema_job_elsewhere:
            return "another revision's schema Job (or its Pod, perhaps stuck Terminating) to finish"
        if phase == "missing":
            return (
                f"the {kind} Job of revision {state.revision} to start (a quota or an admission webhook may refuse it)"
            )
        if phase == "running":
            return f"the {kind} Job of revision {state.revision} to finish"
    if state.phase in ("Deploying", "Promoting") and state.target_color:
        if state.phase == "Promoting" and not state.promotion_approved:
            return "promotion (kubectl ragcorp promote)"
        size = wanted if state.phase == "Promoting" else policy.preview_replicas or wanted
        return f"{state.target_color} to be ready with {state.target_image} at {size} replicas"
    if state.phase == "Verifying":
        return "the metric gate"
    if state.phase == "ScalingDown":
        return "the post-promotion gate and the scale-down delay"
    return ""
