"""The rollout state machine, table-driven over its states and events (pure, no cluster)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ragcorp_operator.rollout import DeploymentState, JobState, Observed, RolloutState, Settings, decide

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SETTINGS = Settings(
    image="app:2",
    replicas=2,
    migrations_enabled=True,
    auto_promote=True,
    ready_timeout=timedelta(minutes=10),
    scale_down_delay=timedelta(minutes=5),
    keep_previous=True,
)
IDLE_ON_BLUE = RolloutState(phase="Idle", revision=1, active_color="blue", active_image="app:1", schema_revision="0001")
READY_BLUE = DeploymentState(True, "app:1", 2, 2, 2)
READY_GREEN = DeploymentState(True, "app:2", 2, 2, 2)
ABSENT = DeploymentState()
NO_JOB = JobState()


def observe(
    state: RolloutState,
    *,
    settings: Settings = SETTINGS,
    green: DeploymentState = ABSENT,
    job: JobState = NO_JOB,
    now: datetime = NOW,
    job_revision: int | None = None,
) -> Observed:
    revision = state.revision if job_revision is None else job_revision
    return Observed(settings, state, {"blue": READY_BLUE, "green": green}, job, now, revision)


def test_a_new_resource_starts_by_migrating_to_blue() -> None:
    decision = decide(observe(RolloutState(), settings=replace(SETTINGS, image="app:1")))
    assert (decision.state.phase, decision.state.target_color, decision.state.revision) == ("Migrating", "blue", 1)
    assert decision.intent.migration == (1, "app:1")
    assert decision.intent.deployments == {}


def test_image_change_migrates_before_deploying_the_standby_colour() -> None:
    decision = decide(observe(IDLE_ON_BLUE))
    assert decision.state.phase == "Migrating" and decision.state.target_color == "green"
    assert decision.intent.migration == (2, "app:2")
    assert "green" not in decision.intent.deployments
    assert decision.intent.active_service_color == "blue"


def test_the_previous_revisions_job_never_advances_a_new_rollout() -> None:
    decision = decide(observe(IDLE_ON_BLUE, job=JobState("succeeded", "0001"), job_revision=1))
    assert decision.state.phase == "Migrating" and decision.state.revision == 2
    assert decision.state.schema_revision == "0001"


@pytest.mark.parametrize(
    ("job", "phase", "reason"),
    [
        (JobState("running"), "Migrating", None),
        (JobState("missing"), "Migrating", None),
        (JobState("succeeded", "0002"), "Deploying", None),
        (JobState("failed", message="BackoffLimitExceeded: x"), "Aborted", "MigrationFailed"),
    ],
)
def test_migrating_reacts_to_the_job(job: JobState, phase: str, reason: str | None) -> None:
    migrating = replace(
        IDLE_ON_BLUE, phase="Migrating", revision=2, target_color="green", target_image="app:2", step_started_at=NOW
    )
    decision = decide(observe(migrating, job=job))
    assert decision.state.phase == phase
    assert (decision.state.failure.reason if decision.state.failure else None) == reason
    assert decision.intent.active_service_color == "blue"  # traffic never moves before promotion


def deploying(at: datetime = NOW) -> RolloutState:
    return replace(
        IDLE_ON_BLUE,
        phase="Deploying",
        revision=2,
        target_color="green",
        target_image="app:2",
        schema_revision="0002",
        step_started_at=at,
    )


def test_ready_standby_is_promoted_and_the_old_colour_keeps_serving_until_the_delay() -> None:
    decision = decide(observe(deploying(), green=READY_GREEN))
    state = decision.state
    assert (state.phase, state.active_color, state.active_image) == ("ScalingDown", "green", "app:2")
    assert decision.intent.active_service_color == "green"
    assert decision.intent.deployments == {"green": ("app:2", 2), "blue": ("app:1", 2)}
    later = decide(observe(state, green=READY_GREEN, now=NOW + timedelta(minutes=5)))
    assert later.state.phase == "Idle"
    assert later.intent.deployments == {"green": ("app:2", 2), "blue": ("app:1", 0)}


def test_without_keep_previous_the_old_colour_is_removed() -> None:
    settings = replace(SETTINGS, keep_previous=False, scale_down_delay=timedelta(0))
    decision = decide(observe(deploying(), settings=settings, green=READY_GREEN))
    assert decision.state.phase == "Idle"
    assert decision.intent.deployments == {"green": ("app:2", 2)}


def test_standby_not_ready_in_time_aborts_and_traffic_stays() -> None:
    not_ready = DeploymentState(True, "app:2", 2, 1, 2)
    waiting = decide(observe(deploying(), green=not_ready, now=NOW + timedelta(minutes=9)))
    assert waiting.state.phase == "Deploying"
    late = decide(observe(deploying(), green=not_ready, now=NOW + timedelta(minutes=11)))
    assert late.state.phase == "Aborted" and late.state.failure and late.state.failure.reason == "NotReady"
    assert late.intent.active_service_color == "blue"
    assert late.intent.deployments["blue"] == ("app:1", 2)


def test_an_aborted_rollout_does_not_retry_by_itself() -> None:
    aborted = decide(observe(deploying(), green=DeploymentState(), now=NOW + timedelta(hours=1))).state
    again = decide(observe(aborted, now=NOW + timedelta(hours=2)))
    assert again.state == aborted and again.events == []


def test_a_new_image_during_a_rollout_supersedes_it() -> None:
    decision = decide(observe(deploying(), settings=replace(SETTINGS, image="app:3")))
    assert decision.state.phase == "Migrating"
    assert (decision.state.revision, decision.state.target_image) == (3, "app:3")
    assert decision.intent.migration == (3, "app:3")


def test_manual_promotion_waits_in_promoting() -> None:
    decision = decide(observe(deploying(), settings=replace(SETTINGS, auto_promote=False), green=READY_GREEN))
    assert decision.state.phase == "Promoting"
    assert decision.intent.active_service_color == "blue"
    assert decision.intent.preview_service_color == "green"


def test_deciding_twice_changes_nothing() -> None:
    first = decide(observe(IDLE_ON_BLUE, settings=replace(SETTINGS, image="app:1")))
    assert first.state == IDLE_ON_BLUE and first.events == []


def test_status_round_trip() -> None:
    state = replace(deploying(), failure=None, promoted_at=NOW)
    assert RolloutState.from_status(state.to_status()) == state
