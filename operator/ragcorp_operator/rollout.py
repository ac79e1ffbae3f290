"""The blue/green rollout as a pure state machine: observed state in, next state out.

    Pending/Idle --image changed--> Migrating --> Deploying(standby colour)
      --> Verifying(ready replicas) --> Promoting(Service selector -> new colour)
      --> ScalingDown(old colour, after scaleDownDelaySeconds) --> Idle
    any failure --> Aborted: traffic stays on the old colour, Degraded with the reason.

Everything the machine needs is in `Observed`; everything it decides is in the
returned `RolloutState` (persisted in the resource's status, so a restarted
operator resumes where it was) plus `Intent` (what the children must look like).
An aborted rollout stays aborted until the image changes again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from ragcorp_operator.naming import COLORS, Color, other

Phase = Literal["Pending", "Migrating", "Deploying", "Verifying", "Promoting", "ScalingDown", "Idle", "Aborted"]
IN_FLIGHT: frozenset[str] = frozenset({"Migrating", "Deploying", "Verifying", "Promoting", "ScalingDown"})
JobPhase = Literal["missing", "running", "succeeded", "failed"]


@dataclass(frozen=True)
class DeploymentState:
    exists: bool = False
    image: str | None = None
    replicas: int = 0
    ready_replicas: int = 0
    updated_replicas: int = 0

    def ready_at(self, image: str, replicas: int) -> bool:
        """Ready by the contract: ready and updated replicas reach the wanted count."""
        return (
            self.exists
            and self.image == image
            and self.ready_replicas >= replicas
            and self.updated_replicas >= replicas
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
class RolloutState:
    """The part of `.status` the machine owns."""

    phase: Phase = "Pending"
    revision: int = 0
    active_color: Color | None = None
    active_image: str | None = None
    target_color: Color | None = None
    target_image: str | None = None
    schema_revision: str | None = None
    step_started_at: datetime | None = None
    promoted_at: datetime | None = None
    previous_color: Color | None = None
    previous_image: str | None = None
    failure: Failure | None = None

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
            "previewColor": self.target_color if self.phase in IN_FLIGHT else None,
            "schemaRevision": self.schema_revision,
            "stepStartedAt": iso(self.step_started_at),
            "promotedAt": iso(self.promoted_at),
            "previousColor": self.previous_color,
            "previousImage": self.previous_image,
            "failure": vars(self.failure) if self.failure else None,
        }

    @classmethod
    def from_status(cls, status: dict[str, Any]) -> RolloutState:
        def moment(value: Any) -> datetime | None:
            return datetime.fromisoformat(value) if isinstance(value, str) and value else None

        def color(value: Any) -> Color | None:
            return value if value in COLORS else None

        failure = status.get("failure")
        return cls(
            phase=status.get("phase") or "Pending",
            revision=int(status.get("revision") or 0),
            active_color=color(status.get("activeColor")),
            active_image=status.get("activeImage"),
            target_color=color(status.get("targetColor")),
            target_image=status.get("targetImage"),
            schema_revision=status.get("schemaRevision"),
            step_started_at=moment(status.get("stepStartedAt")),
            promoted_at=moment(status.get("promotedAt")),
            previous_color=color(status.get("previousColor")),
            previous_image=status.get("previousImage"),
            failure=Failure(**failure) if isinstance(failure, dict) else None,
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


@dataclass(frozen=True)
class Observed:
    settings: Settings
    state: RolloutState
    deployments: dict[Color, DeploymentState]
    migration: JobState
    now: datetime
    #: The revision `migration` was read for; a result of another revision never counts.
    migration_revision: int = 0


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Intent:
    """What the children must look like after this step."""

    #: colour -> (image, replicas); a colour absent here is deleted.
    deployments: dict[Color, tuple[str, int]]
    #: the active Service's colour (None: no colour serves yet).
    active_service_color: Color | None
    preview_service_color: Color | None
    #: run (or keep) the migration Job for this revision and image.
    migration: tuple[int, str] | None


@dataclass(frozen=True)
class Decision:
    state: RolloutState
    intent: Intent
    events: list[Event] = field(default_factory=list)


def _start(observed: Observed, events: list[Event]) -> RolloutState:
    state, settings = observed.state, observed.settings
    target_color: Color = other(state.active_color) if state.active_color else "blue"
    events.append(
        Event(
            "Normal",
            "RolloutStarted",
            f"rolling out {settings.image} to {target_color} (revision {state.revision + 1})",
        )
    )
    return replace(
        state,
        phase="Migrating" if settings.migrations_enabled else "Deploying",
        revision=state.revision + 1,
        target_color=target_color,
        target_image=settings.image,
        step_started_at=observed.now,
        failure=None,
    )


def _abort(
    state: RolloutState, now: datetime, step: str, reason: str, message: str, events: list[Event]
) -> RolloutState:
    events.append(Event("Warning", reason, f"rollout of {state.target_image} aborted at {step}: {message}"))
    return replace(state, phase="Aborted", failure=Failure(step, reason, message), step_started_at=now)


def advance(observed: Observed) -> RolloutState:
    """Only the next state (for callers that need no intent)."""
    return decide(observed).state


def decide(observed: Observed) -> Decision:
    """One step of the machine. Calling it again with the same observation is a no-op."""
    settings, now = observed.settings, observed.now
    state = observed.state
    events: list[Event] = []

    wants_new_image = settings.image not in (state.active_image, state.target_image)
    if wants_new_image:
        state = _start(observed, events)

    if state.phase == "Migrating":
        job = observed.migration if observed.migration_revision == state.revision else JobState()
        if job.phase == "succeeded":
            events.append(Event("Normal", "MigrationSucceeded", f"schema at revision {job.schema_revision}"))
            state = replace(state, phase="Deploying", schema_revision=job.schema_revision, step_started_at=now)
        elif job.phase == "failed":
            state = _abort(
                state, now, "Migrating", "MigrationFailed", job.message or "the migration Job failed", events
            )

    if state.phase == "Deploying":
        assert state.target_color is not None and state.target_image is not None
        standby = observed.deployments.get(state.target_color, DeploymentState())
        if standby.ready_at(state.target_image, settings.replicas):
            events.append(Event("Normal", "StandbyReady", f"{state.target_color} is ready with {state.target_image}"))
            state = replace(state, phase="Verifying", step_started_at=now)
        elif state.step_started_at and now - state.step_started_at > settings.ready_timeout:
            message = f"{state.target_color} not ready within {int(settings.ready_timeout.total_seconds())}s"
            state = _abort(state, now, "Deploying", "NotReady", message, events)

    if state.phase == "Verifying":
        # Readiness held when we got here; later steps (smoke test, metric gate) plug in here.
        state = replace(state, phase="Promoting", step_started_at=now)

    if state.phase == "Promoting" and settings.auto_promote:
        assert state.target_color is not None
        events.append(Event("Normal", "Promoted", f"traffic switched to {state.target_color} ({state.target_image})"))
        previous = state.active_color
        state = replace(
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
        )

    if state.phase == "ScalingDown" and state.promoted_at and now - state.promoted_at >= settings.scale_down_delay:
        events.append(Event("Normal", "ScaledDown", f"previous colour {state.previous_color} scaled to zero"))
        state = replace(state, phase="Idle", step_started_at=now)

    return Decision(state=state, intent=_intent(state, settings), events=events)


def _intent(state: RolloutState, settings: Settings) -> Intent:
    deployments: dict[Color, tuple[str, int]] = {}
    if state.active_color and state.active_image:
        deployments[state.active_color] = (state.active_image, settings.replicas)
    if state.phase in ("Deploying", "Verifying", "Promoting") and state.target_color and state.target_image:
        deployments[state.target_color] = (state.target_image, settings.replicas)
    previous, previous_image = state.previous_color, state.previous_image
    if previous and previous_image and previous not in deployments:
        # The previous colour keeps serving until the scale-down delay passes, then idles at
        # zero replicas (kept for an instant rollback) or goes away.
        if state.phase == "ScalingDown":
            deployments[previous] = (previous_image, settings.replicas)
        elif settings.keep_previous:
            deployments[previous] = (previous_image, 0)
    migration = None
    if state.phase == "Migrating" and state.target_image:
        migration = (state.revision, state.target_image)
    preview = state.target_color if state.phase in ("Verifying", "Promoting") else None
    return Intent(
        deployments=deployments,
        active_service_color=state.active_color,
        preview_service_color=preview or state.active_color,
        migration=migration,
    )
