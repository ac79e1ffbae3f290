"""The blue/green rollout as a pure state machine: observed state in, next state out.

    Pending/Idle --image changed--> BackingUp (optional) --> Migrating --> Deploying(standby colour)
      --> Verifying(ready, smoke-test Job, optional metric gate) --> Promoting(active Service -> new colour)
      --> ScalingDown(old colour, after scaleDownDelaySeconds) --> Idle
    any failure --> [Downgrading (downgradeOnAbort)] --> Aborted: traffic stays on the old colour.
    rollback --> instant switch while the old colour runs, else
                 [Downgrading] --> Deploying(old image) --> Verifying --> Promoting --> ...

Everything the machine needs is in `Observed`; everything it decides is in the
returned `RolloutState` (persisted in the resource's status, so a restarted
operator resumes where it stopped) and `Intent` (what the children must look
like). An aborted rollout stays aborted until the image changes or a retry is
requested; a rolled-back image is not rolled forward again by itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from ragcorp_operator.naming import COLORS, Color, other

Phase = Literal[
    "Pending",
    "BackingUp",
    "Migrating",
    "Deploying",
    "Verifying",
    "Promoting",
    "ScalingDown",
    "Idle",
    "Downgrading",
    "Aborted",
]
IN_FLIGHT: frozenset[str] = frozenset(
    {"BackingUp", "Migrating", "Deploying", "Verifying", "Promoting", "ScalingDown", "Downgrading"}
)
JobPhase = Literal["missing", "running", "succeeded", "failed"]
JobKind = Literal["backup", "migrate", "smoke", "downgrade"]
#: "nodata": no requests in the window; "unmeasured": Prometheus unreachable or erroring, never a pass.
GateResult = Literal["pass", "fail", "nodata", "unmeasured"]
NoDataPolicy = Literal["wait", "pass", "fail"]


@dataclass(frozen=True)
class DeploymentState:
    exists: bool = False
    image: str | None = None
    #: spec.replicas (the HPA's choice for an autoscaled colour)
    replicas: int = 0
    ready_replicas: int = 0
    updated_replicas: int = 0
    available_replicas: int = 0
    #: status.replicas: every Pod not yet gone, old template included
    total_replicas: int = 0
    generation: int = 0
    observed_generation: int = 0

    def ready_at(self, image: str, replicas: int) -> bool:
        """`kubectl rollout status`'s test, at `replicas`: the controller has seen the latest spec,
        that many replicas are updated, ready and available, and no old Pod is left. Traffic never
        moves to a colour that fails it (terminating, unready or too few Pods)."""
        return (
            self.exists
            and self.image == image
            and self.observed_generation >= self.generation
            and self.replicas >= replicas
            and min(self.updated_replicas, self.ready_replicas, self.available_replicas) >= replicas
            and self.total_replicas <= self.updated_replicas
        )


@dataclass(frozen=True)
class JobState:
    phase: JobPhase = "missing"
    schema_revision: str | None = None
    message: str = ""


@dataclass(frozen=True)
class Failure:
    step: str
    reason: str
    message: str


@dataclass(frozen=True)
class HistoryEntry:
    revision: int
    image: str
    schema_revision: str | None
    outcome: Literal["promoted", "aborted", "superseded", "rolledBack"]
    at: str
    reason: str | None = None


@dataclass(frozen=True)
class RolloutState:
    """The part of `.status` the machine owns."""

    phase: Phase = "Pending"
    revision: int = 0
    active_color: Color | None = None
    active_image: str | None = None
    target_color: Color | None = None
    target_image: str | None = None
    schema_revision: str | None = None
    #: The schema before this rollout migrated it (what an abort downgrades to).
    base_schema_revision: str | None = None
    #: A rollback's wanted schema; a downgrade Job takes the schema there.
    downgrade_to: str | None = None
    #: What follows a downgrade: "Aborted" (abort) or "Deploying" (rollback).
    after_downgrade: Phase | None = None
    #: The image a downgrade must run: the newest one, which knows the newer revision.
    downgrade_image: str | None = None
    migrated: bool = False
    rollback: bool = False
    #: An image rolled back away from; not rolled out again until the spec changes.
    held_image: str | None = None
    step_started_at: datetime | None = None
    promoted_at: datetime | None = None
    previous_color: Color | None = None
    previous_image: str | None = None
    failure: Failure | None = None
    history: tuple[HistoryEntry, ...] = ()
    #: An abort asked while a migration ran: it takes effect (and downgrades) once the migration ends.
    abort_requested: bool = False
    #: The post-promotion gate passed (or there is none): the previous colour may go.
    verified_after_promotion: bool = False
    #: Promotion decided (auto, timer or request); the switch waits for the full replica count.
    promotion_approved: bool = False

    def to_status(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {
            "phase": self.phase,
            "revision": self.revision,
            "activeColor": self.active_color,
            "activeImage": self.active_image,
            "targetColor": self.target_color,
            "targetImage": self.target_image,
            "previewColor": self.target_color if self.phase in ("Verifying", "Promoting") else None,
            "schemaRevision": self.schema_revision,
            "baseSchemaRevision": self.base_schema_revision,
            "downgradeTo": self.downgrade_to,
            "afterDowngrade": self.after_downgrade,
            "downgradeImage": self.downgrade_image,
            "migrated": self.migrated,
            "rollback": self.rollback,
            "heldImage": self.held_image,
            "stepStartedAt": iso(self.step_started_at),
            "promotedAt": iso(self.promoted_at),
            "previousColor": self.previous_color,
            "previousImage": self.previous_image,
            "failure": vars(self.failure) if self.failure else None,
            "history": [{k: v for k, v in vars(h).items() if v is not None} for h in self.history],
            "abortRequested": self.abort_requested,
            "verifiedAfterPromotion": self.verified_after_promotion,
            "promotionApproved": self.promotion_approved,
        }

    @classmethod
    def from_status(cls, status: dict[str, Any]) -> RolloutState:
        def moment(value: Any) -> datetime | None:
            return datetime.fromisoformat(value) if isinstance(value, str) and value else None

        def color(value: Any) -> Color | None:
            return value if value in COLORS else None

        failure = status.get("failure")
        history = tuple(
            HistoryEntry(
                revision=int(h["revision"]),
                image=h["image"],
                schema_revision=h.get("schema_revision"),
                outcome=h["outcome"],
                at=h.get("at", ""),
                reason=h.get("reason"),
            )
            for h in status.get("history") or []
            if isinstance(h, dict) and "revision" in h and "image" in h
        )
        return cls(
            phase=status.get("phase") or "Pending",
            revision=int(status.get("revision") or 0),
            active_color=color(status.get("activeColor")),
            active_image=status.get("activeImage"),
            target_color=color(status.get("targetColor")),
            target_image=status.get("targetImage"),
            schema_revision=status.get("schemaRevision"),
            base_schema_revision=status.get("baseSchemaRevision"),
            downgrade_to=status.get("downgradeTo"),
            after_downgrade=status.get("afterDowngrade"),
            downgrade_image=status.get("downgradeImage"),
            migrated=bool(status.get("migrated")),
            rollback=bool(status.get("rollback")),
            held_image=status.get("heldImage"),
            step_started_at=moment(status.get("stepStartedAt")),
            promoted_at=moment(status.get("promotedAt")),
            previous_color=color(status.get("previousColor")),
            previous_image=status.get("previousImage"),
            failure=Failure(**failure) if isinstance(failure, dict) else None,
            history=history,
            abort_requested=bool(status.get("abortRequested")),
            # Status from before the post-promotion gate: nothing left to verify.
            verified_after_promotion=bool(status.get("verifiedAfterPromotion", True)),
            promotion_approved=bool(status.get("promotionApproved")),
        )


@dataclass(frozen=True)
class Settings:
    """The spec's rollout knobs, as the machine sees them."""

    image: str
    replicas: int
    migrations_enabled: bool
    auto_promote: bool
    ready_timeout: timedelta
    scale_down_delay: timedelta
    keep_previous: bool
    backup_enabled: bool = False
    smoke_test_enabled: bool = True
    gate_enabled: bool = False
    gate_window: timedelta = timedelta(minutes=5)
    gate_deadline: timedelta = timedelta(minutes=15)
    on_no_data: NoDataPolicy = "wait"
    downgrade_on_abort: bool = False
    history_limit: int = 10
    #: With autoscaling: its maximum (the new colour takes the old one's current count, up to this).
    max_replicas: int | None = None
    #: Replicas of the new colour while it is verified; scaled to the full count before the switch.
    preview_replicas: int | None = None
    #: Without autoPromote: promote anyway this long after verification passed.
    auto_promotion_after: timedelta | None = None
    #: How long an aborted colour keeps running (for `kubectl logs`, debugging) before it goes.
    abort_scale_down_delay: timedelta = timedelta(seconds=30)
    #: Run the metric gate again on the active Service after the switch, rolling back on failure.
    gate_after_promotion: bool = True
    #: The backup, migration and downgrade Jobs' deadline, and the smoke Job's (activeDeadlineSeconds).
    job_timeout: timedelta = timedelta(minutes=10)
    smoke_timeout: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class Requests:
    """One-shot requests from annotations or the spec (each handled once, then cleared)."""

    promote: bool = False
    abort: bool = False
    retry: bool = False
    #: 0 means "the revision before the active one"; None means no rollback asked.
    rollback_to: int | None = None


@dataclass(frozen=True)
class Observed:
    settings: Settings
    state: RolloutState
    deployments: dict[Color, DeploymentState]
    #: The Jobs of `state.revision`, by kind; a Job of another revision never counts.
    jobs: dict[JobKind, JobState]
    now: datetime
    gate: GateResult | None = None
    requests: Requests = Requests()
    #: Another migration or downgrade of this resource still runs (a superseded Job's Pod, say).
    schema_job_elsewhere: bool = False
    #: The colour the active Service selects, as read (None when not read).
    serving_color: Color | None = None


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class JobIntent:
    kind: JobKind
    revision: int
    image: str
    #: For a downgrade: the schema revision to go down to.
    schema_revision: str | None = None


@dataclass(frozen=True)
class Intent:
    """What the children must look like after this step."""

    #: colour -> (image, replicas); a colour absent here is deleted.
    deployments: dict[Color, tuple[str, int]]
    active_service_color: Color | None
    preview_service_color: Color | None
    jobs: tuple[JobIntent, ...] = ()


@dataclass(frozen=True)
class Decision:
    state: RolloutState
    intent: Intent
    events: list[Event] = field(default_factory=list)
    #: Requests the machine acted on (or refused); the caller clears them.
    handled: Requests = Requests()
    #: What the phase is waiting for, in words (the Progressing condition says it).
    waiting_for: str = ""


def _iso(now: datetime) -> str:
    return now.isoformat()


def _remember(state: RolloutState, entry: HistoryEntry, limit: int) -> tuple[HistoryEntry, ...]:
    return (*state.history, entry)[-limit:]


def _start(
    observed: Observed, state: RolloutState, image: str, events: list[Event], rollback: bool = False
) -> RolloutState:
    settings, now = observed.settings, observed.now
    if state.phase in IN_FLIGHT and state.target_image:  # ScalingDown and Idle have no target
        events.append(Event("Normal", "Superseded", f"rollout of {state.target_image} superseded by {image}"))
        state = replace(
            state,
            history=_remember(
                state,
                HistoryEntry(state.revision, state.target_image, state.schema_revision, "superseded", _iso(now)),
                settings.history_limit,
            ),
        )
    if state.phase == "ScalingDown":  # the previous colour is done serving; finish that first
        state = replace(state, phase="Idle")
    target_color: Color = other(state.active_color) if state.active_color else "blue"
    first: Phase
    if rollback:
        first = "Deploying"
    elif settings.backup_enabled and state.active_image:
        first = "BackingUp"
    elif settings.migrations_enabled:
        first = "Migrating"
    else:
        first = "Deploying"
    kind = "RollbackStarted" if rollback else "RolloutStarted"
    events.append(Event("Normal", kind, f"rolling out {image} to {target_color} (revision {state.revision + 1})"))
    return replace(
        state,
        phase=first,
        revision=state.revision + 1,
        target_color=target_color,
        target_image=image,
        base_schema_revision=state.schema_revision,
        migrated=False,
        rollback=rollback,
        held_image=None if not rollback else state.held_image,
        step_started_at=now,
        failure=None,
        downgrade_to=None,
        after_downgrade=None,
        downgrade_image=None,
        abort_requested=False,
        promotion_approved=False,
    )


def _abort(
    observed: Observed, state: RolloutState, step: str, reason: str, message: str, events: list[Event]
) -> RolloutState:
    settings, now = observed.settings, observed.now
    events.append(Event("Warning", reason, f"rollout of {state.target_image} aborted at {step}: {message}"))
    entry = HistoryEntry(state.revision, state.target_image or "", state.schema_revision, "aborted", _iso(now), reason)
    state = replace(
        state,
        failure=Failure(step, reason, message),
        step_started_at=now,
        history=_remember(state, entry, settings.history_limit),
        abort_requested=False,
        promotion_approved=False,
    )
    needs_downgrade = (
        settings.downgrade_on_abort
        and state.migrated
        and state.base_schema_revision
        and state.base_schema_revision != state.schema_revision
    )
    if needs_downgrade:
        events.append(Event("Normal", "DowngradeStarted", f"downgrading the schema to {state.base_schema_revision}"))
        return replace(
            state,
            phase="Downgrading",
            downgrade_to=state.base_schema_revision,
            after_downgrade="Aborted",
            downgrade_image=state.target_image,
        )
    return replace(state, phase="Aborted")


def _promote(observed: Observed, state: RolloutState, events: list[Event]) -> RolloutState:
    settings, now = observed.settings, observed.now
    assert state.target_color is not None and state.target_image is not None
    events.append(Event("Normal", "Promoted", f"traffic switched to {state.target_color} ({state.target_image})"))
    entry = HistoryEntry(
        state.revision,
        state.target_image,
        state.schema_revision,
        "rolledBack" if state.rollback else "promoted",
        _iso(now),
    )
    previous = state.active_color
    return replace(
        state,
        phase="ScalingDown" if previous else "Idle",
        previous_color=previous,
        previous_image=state.active_image,
        active_color=state.target_color,
        active_image=state.target_image,
        target_color=None,
        target_image=None,
        promoted_at=now,
        step_started_at=now,
        history=_remember(state, entry, settings.history_limit),
        # Only a rollout with a previous colour to return to can be rolled back by the gate.
        verified_after_promotion=not (settings.gate_enabled and settings.gate_after_promotion and previous),
    )


def _rollback_target(state: RolloutState, to: int) -> HistoryEntry | None:
    """A revision that served and was never aborted: one the post-promotion gate (or a person)
    aborted after its promotion is not a place to go back to."""
    aborted = {h.revision for h in state.history if h.outcome == "aborted"}
    promoted = [h for h in state.history if h.outcome in ("promoted", "rolledBack") and h.revision not in aborted]
    if to == 0:
        candidates = [h for h in promoted if h.image != state.active_image]
        return candidates[-1] if candidates else None
    return next((h for h in reversed(promoted) if h.revision == to), None)


def _rollback(observed: Observed, state: RolloutState, to: int, events: list[Event]) -> RolloutState:
    settings, now = observed.settings, observed.now
    entry = _rollback_target(state, to)
    if entry is None or entry.image == state.active_image:
        events.append(
            Event(
                "Warning", "RollbackRejected", f"no promoted revision {to or 'before the active one'} to roll back to"
            )
        )
        return state
    held = state.active_image
    wants_schema = entry.schema_revision
    schema_differs = settings.migrations_enabled and wants_schema is not None and wants_schema != state.schema_revision
    previous = state.previous_color
    still_running = (
        previous is not None
        and state.previous_image == entry.image
        and observed.deployments.get(previous, DeploymentState()).ready_at(entry.image, settings.replicas)
    )
    if still_running:
        assert previous is not None
        events.append(Event("Normal", "RolledBack", f"traffic switched back to {previous} ({entry.image}) instantly"))
        newer_image = state.active_image
        state = replace(
            state,
            revision=state.revision + 1,
            active_color=previous,
            active_image=entry.image,
            previous_color=state.active_color,
            previous_image=state.active_image,
            held_image=held,
            promoted_at=now,
            step_started_at=now,
            failure=None,
            # The restored revision already served: the post-promotion gate of the one rolled back
            # from must not judge it, nor move traffic back to what the user left.
            verified_after_promotion=True,
            history=_remember(
                state,
                HistoryEntry(state.revision + 1, entry.image, wants_schema, "rolledBack", _iso(now)),
                settings.history_limit,
            ),
        )
        if schema_differs:
            return replace(
                state,
                phase="Downgrading",
                downgrade_to=wants_schema,
                after_downgrade="ScalingDown",
                downgrade_image=newer_image,
            )
        return replace(state, phase="ScalingDown")
    state = _start(observed, replace(state, held_image=held), entry.image, events, rollback=True)
    if schema_differs:
        return replace(
            state,
            phase="Downgrading",
            downgrade_to=wants_schema,
            after_downgrade="Deploying",
            downgrade_image=state.active_image,
        )
    return state


def wanted_replicas(observed: Observed) -> int:
    """The replica count the new colour must reach before it takes traffic: the spec's, or with
    autoscaling the old colour's current count (the HPA's choice), up to the HPA's maximum, so a
    switch under load never lands on `minReplicas`."""
    settings, state = observed.settings, observed.state
    wanted = settings.replicas
    if settings.max_replicas is not None and state.active_color:
        current = observed.deployments.get(state.active_color, DeploymentState()).replicas
        wanted = max(wanted, min(current, settings.max_replicas))
    return wanted


def decide(observed: Observed) -> Decision:
    """One step of the machine. Deciding again on the same observation changes nothing."""
    settings, now, requests = observed.settings, observed.now, observed.requests
    state = observed.state
    events: list[Event] = []
    handled = Requests()
    started_this_pass = False
    wanted = wanted_replicas(observed)

    if requests.rollback_to is not None:
        handled = replace(handled, rollback_to=requests.rollback_to)
        if state.phase in ("Idle", "ScalingDown", "Aborted"):
            before = state.revision
            state = _rollback(observed, state, requests.rollback_to, events)
            started_this_pass = state.revision != before
        else:
            events.append(Event("Warning", "RollbackRejected", f"cannot roll back during {state.phase}"))

    if state.phase == "Aborted" and settings.image == state.active_image and state.target_image != settings.image:
        # The user put spec.image back to what serves: the failed rollout is dropped, not kept failing.
        events.append(
            Event("Normal", "RolloutDropped", f"spec.image is {settings.image} again; {state.target_image} dropped")
        )
        state = replace(state, phase="Idle", target_color=None, target_image=None, failure=None, step_started_at=now)

    if not started_this_pass:
        state = _on_revert(observed, state, events)

    # A running migration is never superseded mid-flight by another: the new rollout starts, and
    # its migration waits until the old one's Pod is gone (`schema_job_elsewhere`).
    wants_new_image = settings.image not in (state.active_image, state.target_image, state.held_image)
    if wants_new_image and not started_this_pass and state.phase != "Downgrading" and not state.abort_requested:
        state = _start(observed, state, settings.image, events)
        started_this_pass = True

    if requests.retry:
        handled = replace(handled, retry=True)
        if state.phase == "Aborted" and not started_this_pass:
            state = _start(observed, state, settings.image, events)
            started_this_pass = True

    # Jobs observed this pass belong to the revision read from status; after a start they are stale.
    jobs = {} if started_this_pass else observed.jobs

    if requests.abort:
        handled = replace(handled, abort=True)
        migrating = state.phase == "Migrating" and _migration_unrecorded(jobs)
        if migrating and not state.abort_requested:
            # Stopping a migration halfway leaves the schema wherever it got: let it finish, then undo it.
            events.append(Event("Normal", "AbortPending", "aborting once the running migration finishes"))
            state = replace(state, abort_requested=True)
        elif state.phase in IN_FLIGHT and state.phase not in ("ScalingDown", "Downgrading") and not migrating:
            state = _abort(observed, state, state.phase, "ManualAbort", "aborted by request", events)

    if state.phase == "BackingUp":
        job = jobs.get("backup", JobState())
        if job.phase == "succeeded":
            events.append(Event("Normal", "BackupSucceeded", f"database backed up before revision {state.revision}"))
            state = replace(
                state, phase="Migrating" if settings.migrations_enabled else "Deploying", step_started_at=now
            )
        elif job.phase == "failed":
            state = _abort(observed, state, "BackingUp", "BackupFailed", job.message or "the backup Job failed", events)

    if state.phase == "Migrating":
        job = jobs.get("migrate", JobState())
        if job.phase == "succeeded":
            events.append(Event("Normal", "MigrationSucceeded", f"schema at revision {job.schema_revision}"))
            state = replace(
                state, phase="Deploying", schema_revision=job.schema_revision, migrated=True, step_started_at=now
            )
            if state.abort_requested:
                state = _abort(observed, state, "Migrating", "ManualAbort", "aborted by request", events)
        elif job.phase == "failed":
            state = _abort(
                observed, state, "Migrating", "MigrationFailed", job.message or "the migration Job failed", events
            )

    if state.phase == "Downgrading":
        job = jobs.get("downgrade", JobState())
        if job.phase == "succeeded":
            events.append(Event("Normal", "DowngradeSucceeded", f"schema at revision {job.schema_revision}"))
            state = replace(
                state,
                phase=state.after_downgrade or "Aborted",
                schema_revision=job.schema_revision,
                step_started_at=now,
            )
        elif job.phase == "failed":
            message = job.message or "the downgrade Job failed"
            events.append(Event("Warning", "DowngradeFailed", message))
            state = replace(
                state, phase="Aborted", failure=Failure("Downgrading", "DowngradeFailed", message), step_started_at=now
            )

    if state.phase == "Deploying":
        assert state.target_color is not None and state.target_image is not None
        standby = observed.deployments.get(state.target_color, DeploymentState())
        if standby.ready_at(state.target_image, settings.preview_replicas or wanted):
            events.append(Event("Normal", "StandbyReady", f"{state.target_color} is ready with {state.target_image}"))
            state = replace(state, phase="Verifying", step_started_at=now)
        elif state.step_started_at and now - state.step_started_at > settings.ready_timeout:
            message = f"{state.target_color} not ready within {int(settings.ready_timeout.total_seconds())}s"
            state = _abort(observed, state, "Deploying", "NotReady", message, events)

    if state.phase == "Verifying":
        state = _verify(observed, state, jobs, events)

    if state.phase == "Promoting":
        waited = now - state.step_started_at if state.step_started_at else timedelta(0)
        auto = settings.auto_promote or (
            settings.auto_promotion_after is not None and waited >= settings.auto_promotion_after
        )
        if requests.promote:
            handled = replace(handled, promote=True)
        if (auto or requests.promote) and not state.promotion_approved:
            state = replace(state, promotion_approved=True)  # remembered until the new colour can take traffic
        if state.promotion_approved:
            state = _switch_when_ready(observed, state, wanted, events)
    elif requests.promote:
        handled = replace(handled, promote=True)
        events.append(Event("Warning", "PromoteIgnored", f"nothing to promote during {state.phase}"))

    if state.phase == "ScalingDown":
        state = _after_promotion(observed, state, events)

    state = _job_never_started(observed, state, jobs, events)
    intent = _intent(state, wanted, observed)
    waiting = waiting_for(state, settings, jobs, observed.schema_job_elsewhere, wanted)
    return Decision(state=state, intent=intent, events=events, handled=handled, waiting_for=waiting)


#: The Job each phase waits on.
_JOB_OF_PHASE: dict[str, JobKind] = {
    "BackingUp": "backup",
    "Migrating": "migrate",
    "Downgrading": "downgrade",
    "Verifying": "smoke",
}
#: How long past a Job's own deadline a Job that never started (quota, an admission webhook, another
#: migration's Pod stuck Terminating) is waited for before the step gives up.
JOB_START_GRACE = timedelta(minutes=2)


def _awaited_job(state: RolloutState, settings: Settings) -> JobKind | None:
    """The Job the phase waits on, if any (Verifying has none with the smoke test off)."""
    kind = _JOB_OF_PHASE.get(state.phase)
    return None if kind == "smoke" and not settings.smoke_test_enabled else kind


def _job_deadline(settings: Settings, kind: JobKind) -> timedelta:
    return (settings.smoke_timeout if kind == "smoke" else settings.job_timeout) + JOB_START_GRACE


def _job_never_started(
    observed: Observed, state: RolloutState, jobs: dict[JobKind, JobState], events: list[Event]
) -> RolloutState:
    """A step whose Job was never seen gives up after the Job's own deadline and a grace: a Job
    that runs is bounded by `activeDeadlineSeconds`, one that never starts by this."""
    settings, now = observed.settings, observed.now
    kind = _awaited_job(state, settings)
    if kind is None or state.step_started_at is None or jobs.get(kind, JobState()).phase != "missing":
        return state
    deadline = _job_deadline(settings, kind)
    if now - state.step_started_at <= deadline:
        return state
    what = waiting_for(state, settings, jobs, observed.schema_job_elsewhere, 0)
    message = f"waited {int(deadline.total_seconds())}s for {what}"
    if state.phase == "Downgrading":
        events.append(Event("Warning", "DowngradeNotStarted", message))
        failure = Failure("Downgrading", "DowngradeNotStarted", message)
        return replace(state, phase="Aborted", failure=failure, step_started_at=now)
    return _abort(observed, state, state.phase, "JobNotStarted", message, events)


def waiting_for(
    state: RolloutState, settings: Settings, jobs: dict[JobKind, JobState], schema_job_elsewhere: bool, wanted: int
) -> str:
    """What the phase waits for, for people: the Progressing condition's message."""
    kind = _awaited_job(state, settings)
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
        size = wanted if state.phase == "Promoting" else settings.preview_replicas or wanted
        return f"{state.target_color} to be ready with {state.target_image} at {size} replicas"
    if state.phase == "Verifying":
        return "the metric gate"
    if state.phase == "ScalingDown":
        return "the post-promotion gate and the scale-down delay"
    return ""


def _migration_unrecorded(jobs: dict[JobKind, JobState]) -> bool:
    """A migration still running, or finished in this very pass: its revision must be recorded
    (by the Migrating step) before an abort acts, or status would name a schema the database left."""
    return jobs.get("migrate", JobState()).phase in ("running", "succeeded")


#: Phases in which the new image has not yet taken traffic.
_BEFORE_THE_SWITCH = frozenset({"BackingUp", "Migrating", "Deploying", "Verifying", "Promoting"})


def _on_revert(observed: Observed, state: RolloutState, events: list[Event]) -> RolloutState:
    """`spec.image` put back to the image that served (a GitOps revert) is a rollback, never a
    rollout: before the switch the rollout aborts (the schema downgraded when it was migrated and
    `downgradeOnAbort` is set; a running migration first finishes), so the reverted image never
    takes traffic; after the switch, while the previous colour still runs, traffic goes back to it
    at once, the schema with it. Rolling "forward" to the old image would run its `db upgrade`
    against a schema it does not know."""
    image = observed.settings.image
    reverted_after_switch = image == state.previous_image and image not in (state.active_image, state.held_image)
    if state.phase == "ScalingDown" and reverted_after_switch:
        events.append(Event("Normal", "Reverted", f"spec.image is {image} again: rolling back to it"))
        return _rollback(observed, state, 0, events)
    reverted_before_switch = state.phase in _BEFORE_THE_SWITCH and image == state.active_image
    # A rollback holds the spec's newer image on purpose (`held_image`): that is no revert.
    if not reverted_before_switch or image in (state.target_image, state.held_image):
        return state
    if state.phase == "Migrating" and _migration_unrecorded(observed.jobs):
        if not state.abort_requested:
            events.append(
                Event("Normal", "AbortPending", f"spec.image is {image} again: aborting once the migration finishes")
            )
        return replace(state, abort_requested=True)
    message = f"spec.image is {image} again: {state.target_image} dropped before it took traffic"
    return _abort(observed, state, state.phase, "Reverted", message, events)


def _switch_when_ready(observed: Observed, state: RolloutState, wanted: int, events: list[Event]) -> RolloutState:
    """Promote once the new colour passes `kubectl rollout status` at the full count (a preview
    runs fewer; the HPA may have grown the old colour since): never onto unready Pods."""
    assert state.target_color is not None and state.target_image is not None
    standby = observed.deployments.get(state.target_color, DeploymentState())
    if not standby.ready_at(state.target_image, wanted):
        return state
    return _promote(observed, replace(state, promotion_approved=False), events)


def _after_promotion(observed: Observed, state: RolloutState, events: list[Event]) -> RolloutState:
    """The previous colour serves until the post-promotion gate passed and the delay is over, and
    only goes once the active Service is seen on the new colour (with no delay at all, traffic
    must have moved before the old Pods stop)."""
    settings, now = observed.settings, observed.now
    if not state.verified_after_promotion:
        elapsed = now - state.promoted_at if state.promoted_at else timedelta(0)
        if elapsed < settings.gate_window or observed.gate is None:
            return state
        if observed.gate == "fail":
            return _roll_back_after_promotion(observed, state, events)
        if observed.gate == "unmeasured":
            return _roll_back_after_promotion(observed, state, events) if elapsed > settings.gate_deadline else state
        if observed.gate == "nodata" and settings.on_no_data != "pass":
            if settings.on_no_data == "fail" or elapsed > settings.gate_deadline:
                return _roll_back_after_promotion(observed, state, events)
            return state
        events.append(Event("Normal", "VerifiedAfterPromotion", f"{state.active_image} passed its post-promotion gate"))
        state = replace(state, verified_after_promotion=True)
    delay_over = state.promoted_at is not None and now - state.promoted_at >= settings.scale_down_delay
    switched = observed.serving_color == state.active_color
    if delay_over and switched:
        events.append(Event("Normal", "ScaledDown", f"previous colour {state.previous_color} scaled down"))
        state = replace(state, phase="Idle", step_started_at=now)
    return state


def _roll_back_after_promotion(observed: Observed, state: RolloutState, events: list[Event]) -> RolloutState:
    """The gate failed on real traffic: traffic back to the previous colour (still running), and
    the schema back to what it served on, with the newer image that knows both revisions."""
    settings, now = observed.settings, observed.now
    assert state.previous_color is not None and state.previous_image is not None
    bad_image = state.active_image
    message = f"{bad_image} failed its post-promotion gate; traffic back on {state.previous_color}"
    events.append(Event("Warning", "PostPromotionGateFailed", message))
    entry = HistoryEntry(
        state.revision, bad_image or "", state.schema_revision, "aborted", _iso(now), "PostPromotionGateFailed"
    )
    state = replace(
        state,
        active_color=state.previous_color,
        active_image=state.previous_image,
        previous_color=state.active_color,
        previous_image=bad_image,
        target_color=state.active_color,
        target_image=bad_image,
        held_image=None,
        failure=Failure("ScalingDown", "PostPromotionGateFailed", message),
        step_started_at=now,
        verified_after_promotion=True,
        history=_remember(state, entry, settings.history_limit),
    )
    base = state.base_schema_revision
    if settings.migrations_enabled and state.migrated and base and base != state.schema_revision:
        events.append(Event("Normal", "DowngradeStarted", f"downgrading the schema to {base}"))
        return replace(
            state, phase="Downgrading", downgrade_to=base, after_downgrade="Aborted", downgrade_image=bad_image
        )
    return replace(state, phase="Aborted")


def _verify(
    observed: Observed, state: RolloutState, jobs: dict[JobKind, JobState], events: list[Event]
) -> RolloutState:
    settings, now = observed.settings, observed.now
    if settings.smoke_test_enabled:
        smoke = jobs.get("smoke", JobState())
        if smoke.phase == "failed":
            return _abort(
                observed, state, "Verifying", "SmokeTestFailed", smoke.message or "the smoke test failed", events
            )
        if smoke.phase != "succeeded":
            return state
    if settings.gate_enabled:
        elapsed = now - state.step_started_at if state.step_started_at else timedelta(0)
        if elapsed < settings.gate_window or observed.gate is None:
            return state
        if observed.gate == "fail":
            return _abort(
                observed,
                state,
                "Verifying",
                "MetricGateFailed",
                "the preview's error rate or p95 latency is over its threshold",
                events,
            )
        if observed.gate == "unmeasured":
            if elapsed <= settings.gate_deadline:
                return state
            return _abort(
                observed,
                state,
                "Verifying",
                "MetricsUnavailable",
                "Prometheus could not be queried for the preview's metrics until the gate's deadline",
                events,
            )
        if observed.gate == "nodata":
            if settings.on_no_data == "fail" or (settings.on_no_data == "wait" and elapsed > settings.gate_deadline):
                return _abort(
                    observed, state, "Verifying", "NoMetrics", "no metrics reached Prometheus for the preview", events
                )
            if settings.on_no_data == "wait":
                return state
    events.append(Event("Normal", "Verified", f"{state.target_image} passed verification"))
    return replace(state, phase="Promoting", step_started_at=now)


def _kept_size(observed: Observed, color: Color, floor: int) -> int:
    """A colour that served (or still may) keeps at least the size it has: the HPA may have grown
    it past the spec, and shrinking it while endpoints still send it traffic drops requests."""
    return max(floor, observed.deployments.get(color, DeploymentState()).replicas)


def _intent(state: RolloutState, wanted: int, observed: Observed) -> Intent:
    settings, now, schema_job_elsewhere = observed.settings, observed.now, observed.schema_job_elsewhere
    deployments: dict[Color, tuple[str, int]] = {}
    if state.active_color and state.active_image:
        deployments[state.active_color] = (state.active_image, settings.replicas)
    deploying = state.phase in ("Deploying", "Verifying", "Promoting")
    if deploying and state.target_color and state.target_image:
        full = state.phase == "Promoting" and state.promotion_approved
        deployments[state.target_color] = (state.target_image, wanted if full else settings.preview_replicas or wanted)
    if _aborted_colour_lingers(state, settings, now):
        assert state.target_color is not None and state.target_image is not None
        lingering = _kept_size(observed, state.target_color, settings.preview_replicas or wanted)
        deployments.setdefault(state.target_color, (state.target_image, lingering))
    previous, previous_image = state.previous_color, state.previous_image
    if previous and previous_image and previous not in deployments:
        # The previous colour serves until the scale-down delay passes, then idles at zero
        # replicas (kept for an instant rollback) or goes away.
        if state.phase == "ScalingDown" or (state.phase == "Downgrading" and state.after_downgrade == "ScalingDown"):
            deployments[previous] = (previous_image, _kept_size(observed, previous, settings.replicas))
        elif settings.keep_previous:
            deployments[previous] = (previous_image, 0)
    jobs: list[JobIntent] = []
    if state.phase == "BackingUp" and state.target_image:
        jobs.append(JobIntent("backup", state.revision, state.target_image))
    if state.phase == "Migrating" and state.target_image and not schema_job_elsewhere:
        jobs.append(JobIntent("migrate", state.revision, state.target_image))
    if state.phase == "Verifying" and settings.smoke_test_enabled and state.target_image:
        jobs.append(JobIntent("smoke", state.revision, state.target_image, state.schema_revision))
    if state.phase == "Downgrading" and state.downgrade_image and not schema_job_elsewhere:
        jobs.append(JobIntent("downgrade", state.revision, state.downgrade_image, state.downgrade_to))
    preview = state.target_color if state.phase in ("Verifying", "Promoting") else None
    return Intent(
        deployments=deployments,
        active_service_color=state.active_color,
        preview_service_color=preview or state.active_color,
        jobs=tuple(jobs),
    )


def _aborted_colour_lingers(state: RolloutState, settings: Settings, now: datetime) -> bool:
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
        and now - state.step_started_at < settings.abort_scale_down_delay
    )


#: How often a running metric gate asks Prometheus again.
GATE_POLL = timedelta(seconds=15)


#: How often a migration waits to see another one's Pod gone (Pods are not watched).
SCHEMA_JOB_POLL = timedelta(seconds=2)


def next_wakeup(
    state: RolloutState, settings: Settings, now: datetime, schema_job_elsewhere: bool = False
) -> timedelta | None:
    """When time alone can change the next decision (a timeout, a gate's window, the scale-down
    delay); None when only an event can. Events (a Job finishing, replicas turning ready, an
    edit) wake the reconciler sooner; this is what it sleeps for otherwise."""
    due: list[datetime] = []
    started = state.step_started_at
    gate_polls = settings.gate_enabled and (
        state.phase == "Verifying" or (state.phase == "ScalingDown" and not state.verified_after_promotion)
    )
    if state.phase == "Deploying" and started:
        due.append(started + settings.ready_timeout)
    if gate_polls and started:
        window_end = (
            (state.promoted_at if state.phase == "ScalingDown" else started) or started
        ) + settings.gate_window
        due.append(window_end if window_end > now else now + GATE_POLL)
    if state.phase == "ScalingDown" and state.promoted_at:
        due.append(state.promoted_at + settings.scale_down_delay)
    if state.phase == "Promoting" and settings.auto_promotion_after is not None and started:
        due.append(started + settings.auto_promotion_after)
    if _aborted_colour_lingers(state, settings, now) and started:
        due.append(started + settings.abort_scale_down_delay)
    if schema_job_elsewhere and state.phase in ("Migrating", "Downgrading"):
        due.append(now + SCHEMA_JOB_POLL)
    # A deadline already passed was weighed by the decision this pass just made; waking for it again
    # at once would spin (the scale-down delay over, say, while the post-promotion gate still waits).
    upcoming = [moment for moment in due if moment > now]
    if not upcoming:
        return None
    return min(upcoming) - now
