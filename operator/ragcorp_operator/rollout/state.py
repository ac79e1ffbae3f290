"""The rollout's own record, persisted in `.status`: a restarted operator resumes from it.

Everything here is data and its status encoding; what moves it is in `transitions` and the steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from ragcorp_operator.naming import COLORS, Color
from ragcorp_operator.rollout.metric_checks import AnalysisRun, runs_from_status

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
PHASES: tuple[Phase, ...] = get_args(Phase)
IN_FLIGHT: frozenset[str] = frozenset(
    {"BackingUp", "Migrating", "Deploying", "Verifying", "Promoting", "ScalingDown", "Downgrading"}
)


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
    #: The pod config it ran with (`pod_config`); None in history from before configs were revisions.
    config: str | None = None


@dataclass(frozen=True)
class RolloutState:
    """The part of `.status` the machine owns."""

    phase: Phase = "Pending"
    revision: int = 0
    active_color: Color | None = None
    active_image: str | None = None
    target_color: Color | None = None
    target_image: str | None = None
    #: Each colour's pod config (`pod_config.config_hash`): with the image, what a revision is.
    #: None when unrecorded (status from before configs were revisions): it matches any config.
    active_config: str | None = None
    target_config: str | None = None
    previous_config: str | None = None
    held_config: str | None = None
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
    #: When `spec.paused` took hold; on resume the step's timers move on by the time paused.
    paused_at: datetime | None = None
    #: The latest revision's analysis runs (`metric_checks`), one per stage, kept until the next revision's.
    analysis: tuple[AnalysisRun, ...] = ()

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
            "activeConfig": self.active_config,
            "targetConfig": self.target_config,
            "previousConfig": self.previous_config,
            "heldConfig": self.held_config,
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
            "pausedAt": iso(self.paused_at),
            "analysis": [run.to_status() for run in self.analysis] or None,
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
                config=h.get("config"),
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
            active_config=status.get("activeConfig"),
            target_config=status.get("targetConfig"),
            previous_config=status.get("previousConfig"),
            held_config=status.get("heldConfig"),
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
            paused_at=moment(status.get("pausedAt")),
            analysis=runs_from_status(status.get("analysis")),
        )


def remember(state: RolloutState, entry: HistoryEntry, limit: int) -> tuple[HistoryEntry, ...]:
    """The history with `entry` appended, the oldest dropped past `limit` (spec.revisionHistoryLimit)."""
    return (*state.history, entry)[-limit:]


def same_revision(image: str | None, config: str | None, other_image: str | None, other_config: str | None) -> bool:
    """Whether two (image, pod config) pairs are one revision; an unrecorded config matches any."""
    return image == other_image and (config is None or other_config is None or config == other_config)


def config_of(state: RolloutState, image: str | None) -> str | None:
    """The config the colour running `image` was rolled out with (the target's first: it is the newest)."""
    for running, config in (
        (state.target_image, state.target_config),
        (state.active_image, state.active_config),
        (state.previous_image, state.previous_config),
    ):
        if running is not None and running == image:
            return config
    return None
