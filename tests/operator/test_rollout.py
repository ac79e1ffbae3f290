"""The rollout state machine, table-driven over its states and events (pure, no cluster)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ragcorp_operator.rollout import (
    DeploymentState,
    GateResult,
    HistoryEntry,
    JobKind,
    JobState,
    Observed,
    Requests,
    RolloutState,
    Settings,
    decide,
)

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
PROMOTED_1 = HistoryEntry(1, "app:1", "0001", "promoted", NOW.isoformat())
IDLE_ON_BLUE = RolloutState(
    phase="Idle", revision=1, active_color="blue", active_image="app:1", schema_revision="0001", history=(PROMOTED_1,)
)
READY_BLUE = DeploymentState(True, "app:1", 2, 2, 2)
READY_GREEN = DeploymentState(True, "app:2", 2, 2, 2)
ABSENT = DeploymentState()
SUCCEEDED = JobState("succeeded", "0002")
NO_REQUESTS = Requests()


def observe(
    state: RolloutState,
    *,
    settings: Settings = SETTINGS,
    green: DeploymentState = ABSENT,
    jobs: dict[JobKind, JobState] | None = None,
    now: datetime = NOW,
    gate: GateResult | None = None,
    requests: Requests = NO_REQUESTS,
    blue: DeploymentState = READY_BLUE,
) -> Observed:
    return Observed(settings, state, {"blue": blue, "green": green}, jobs or {}, now, gate, requests)


def at(phase: str, **changes: object) -> RolloutState:
    return replace(
        IDLE_ON_BLUE,
        phase=phase,
        revision=2,
        target_color="green",
        target_image="app:2",
        base_schema_revision="0001",
        step_started_at=NOW,
        **changes,
    )  # type: ignore[arg-type]


def test_a_new_resource_starts_by_migrating_to_blue() -> None:
    decision = decide(observe(RolloutState(), settings=replace(SETTINGS, image="app:1")))
    assert (decision.state.phase, decision.state.target_color, decision.state.revision) == ("Migrating", "blue", 1)
    assert [j.kind for j in decision.intent.jobs] == ["migrate"]
    assert decision.intent.deployments == {}


def test_image_change_backs_up_then_migrates_before_deploying() -> None:
    settings = replace(SETTINGS, backup_enabled=True)
    first = decide(observe(IDLE_ON_BLUE, settings=settings))
    assert first.state.phase == "BackingUp" and [j.kind for j in first.intent.jobs] == ["backup"]
    assert "green" not in first.intent.deployments and first.intent.active_service_color == "blue"
    second = decide(observe(first.state, settings=settings, jobs={"backup": JobState("succeeded")}))
    assert second.state.phase == "Migrating" and [j.kind for j in second.intent.jobs] == ["migrate"]


def test_the_previous_revisions_jobs_never_advance_a_new_rollout() -> None:
    decision = decide(observe(IDLE_ON_BLUE, jobs={"migrate": JobState("succeeded", "0001")}))
    assert decision.state.phase == "Migrating" and decision.state.revision == 2


@pytest.mark.parametrize(
    ("phase", "jobs", "green", "next_phase", "reason"),
    [
        ("BackingUp", {"backup": JobState("running")}, ABSENT, "BackingUp", None),
        ("BackingUp", {"backup": JobState("failed", message="x")}, ABSENT, "Aborted", "BackupFailed"),
        ("Migrating", {"migrate": JobState("running")}, ABSENT, "Migrating", None),
        ("Migrating", {}, ABSENT, "Migrating", None),
        ("Migrating", {"migrate": SUCCEEDED}, ABSENT, "Deploying", None),
        (
            "Migrating",
            {"migrate": JobState("failed", message="BackoffLimitExceeded")},
            ABSENT,
            "Aborted",
            "MigrationFailed",
        ),
        ("Deploying", {}, DeploymentState(True, "app:2", 2, 1, 2), "Deploying", None),
        ("Deploying", {}, READY_GREEN, "Verifying", None),
        ("Verifying", {"smoke": JobState("running")}, READY_GREEN, "Verifying", None),
        ("Verifying", {"smoke": JobState("failed", message="HTTP 500")}, READY_GREEN, "Aborted", "SmokeTestFailed"),
        ("Verifying", {"smoke": JobState("succeeded")}, READY_GREEN, "ScalingDown", None),
    ],
)
def test_each_step_reacts_to_what_it_waits_for(
    phase: str, jobs: dict[JobKind, JobState], green: DeploymentState, next_phase: str, reason: str | None
) -> None:
    state = at(
        phase,
        schema_revision="0002" if phase in ("Deploying", "Verifying") else "0001",
        migrated=phase in ("Deploying", "Verifying"),
    )
    decision = decide(observe(state, jobs=jobs, green=green))
    assert decision.state.phase == next_phase
    assert (decision.state.failure.reason if decision.state.failure else None) == reason
    if next_phase != "ScalingDown":
        assert decision.intent.active_service_color == "blue"  # traffic never moves before promotion


def test_preview_selects_the_standby_only_once_it_is_ready() -> None:
    deploying = decide(observe(at("Deploying"), green=DeploymentState(True, "app:2", 2, 0, 2)))
    assert deploying.intent.preview_service_color == "blue"
    verifying = decide(observe(at("Deploying"), green=READY_GREEN))
    assert verifying.state.phase == "Verifying" and verifying.intent.preview_service_color == "green"


def test_promotion_switches_traffic_and_the_old_colour_serves_until_the_delay() -> None:
    decision = decide(observe(at("Verifying"), jobs={"smoke": JobState("succeeded")}, green=READY_GREEN))
    state = decision.state
    assert (state.phase, state.active_color, state.active_image) == ("ScalingDown", "green", "app:2")
    assert state.history[-1].outcome == "promoted" and state.history[-1].revision == 2
    assert decision.intent.deployments == {"green": ("app:2", 2), "blue": ("app:1", 2)}
    later = decide(observe(state, green=READY_GREEN, now=NOW + timedelta(minutes=5)))
    assert later.state.phase == "Idle"
    assert later.intent.deployments == {"green": ("app:2", 2), "blue": ("app:1", 0)}


def test_without_keep_previous_the_old_colour_is_removed() -> None:
    settings = replace(SETTINGS, keep_previous=False, scale_down_delay=timedelta(0))
    decision = decide(
        observe(at("Verifying"), settings=settings, jobs={"smoke": JobState("succeeded")}, green=READY_GREEN)
    )
    assert decision.state.phase == "Idle" and decision.intent.deployments == {"green": ("app:2", 2)}


def test_standby_not_ready_in_time_aborts_and_traffic_stays() -> None:
    not_ready = DeploymentState(True, "app:2", 2, 1, 2)
    late = decide(observe(at("Deploying"), green=not_ready, now=NOW + timedelta(minutes=11)))
    assert late.state.phase == "Aborted" and late.state.failure and late.state.failure.reason == "NotReady"
    assert late.intent.active_service_color == "blue" and late.intent.deployments["blue"] == ("app:1", 2)
    assert late.state.history[-1].outcome == "aborted"


def test_abort_downgrades_with_the_new_image_to_the_recorded_revision() -> None:
    settings = replace(SETTINGS, downgrade_on_abort=True)
    state = at("Verifying", schema_revision="0002", migrated=True)
    aborted = decide(observe(state, settings=settings, jobs={"smoke": JobState("failed")}, green=READY_GREEN))
    assert aborted.state.phase == "Downgrading"
    [job] = aborted.intent.jobs
    assert (job.kind, job.image, job.schema_revision) == ("downgrade", "app:2", "0001")
    done = decide(observe(aborted.state, settings=settings, jobs={"downgrade": JobState("succeeded", "0001")}))
    assert done.state.phase == "Aborted" and done.state.schema_revision == "0001"
    assert done.state.failure and done.state.failure.reason == "SmokeTestFailed"


def test_an_aborted_rollout_waits_for_a_new_image_or_a_retry() -> None:
    aborted = decide(observe(at("Deploying"), now=NOW + timedelta(hours=1))).state
    again = decide(observe(aborted, now=NOW + timedelta(hours=2)))
    assert again.state == aborted and again.events == []
    retried = decide(observe(aborted, requests=Requests(retry=True)))
    assert retried.state.phase == "Migrating" and retried.state.revision == 3 and retried.handled.retry


def test_a_new_image_during_a_rollout_supersedes_it() -> None:
    decision = decide(observe(at("Deploying"), settings=replace(SETTINGS, image="app:3")))
    assert (decision.state.phase, decision.state.revision, decision.state.target_image) == ("Migrating", 3, "app:3")
    assert [(j.kind, j.revision) for j in decision.intent.jobs] == [("migrate", 3)]
    assert decision.state.history[-1].outcome == "superseded"


def test_manual_promotion_and_abort() -> None:
    manual = replace(SETTINGS, auto_promote=False)
    waiting = decide(
        observe(at("Verifying"), settings=manual, jobs={"smoke": JobState("succeeded")}, green=READY_GREEN)
    )
    assert waiting.state.phase == "Promoting" and waiting.intent.active_service_color == "blue"
    promoted = decide(observe(waiting.state, settings=manual, green=READY_GREEN, requests=Requests(promote=True)))
    assert promoted.state.active_color == "green" and promoted.handled.promote
    aborted = decide(observe(waiting.state, settings=manual, green=READY_GREEN, requests=Requests(abort=True)))
    assert aborted.state.phase == "Aborted" and aborted.state.failure and aborted.state.failure.reason == "ManualAbort"


def test_putting_spec_image_back_to_the_active_image_drops_an_aborted_rollout() -> None:
    aborted = decide(
        observe(at("Verifying"), jobs={"smoke": JobState("failed", message="HTTP 500")}, green=READY_GREEN)
    )
    assert aborted.state.phase == "Aborted"
    still = decide(observe(aborted.state))
    assert still.state.phase == "Aborted", "the same spec keeps the failure on record"
    reverted = decide(observe(aborted.state, settings=replace(SETTINGS, image="app:1")))
    assert (reverted.state.phase, reverted.state.target_image, reverted.state.failure) == ("Idle", None, None)
    assert reverted.intent.deployments == {"blue": ("app:1", 2)}
    assert [e.reason for e in reverted.events] == ["RolloutDropped"]


@pytest.mark.parametrize(
    ("gate", "policy", "elapsed", "next_phase"),
    [
        (None, "wait", timedelta(minutes=6), "Verifying"),
        ("pass", "wait", timedelta(minutes=1), "Verifying"),  # the window has not passed yet
        ("pass", "wait", timedelta(minutes=6), "ScalingDown"),
        ("fail", "wait", timedelta(minutes=6), "Aborted"),
        ("nodata", "wait", timedelta(minutes=6), "Verifying"),
        ("nodata", "wait", timedelta(minutes=16), "Aborted"),
        ("nodata", "pass", timedelta(minutes=6), "ScalingDown"),
        ("nodata", "fail", timedelta(minutes=6), "Aborted"),
    ],
)
def test_metric_gate(gate: GateResult | None, policy: str, elapsed: timedelta, next_phase: str) -> None:
    settings = replace(SETTINGS, gate_enabled=True, on_no_data=policy)  # type: ignore[arg-type]
    decision = decide(
        observe(
            at("Verifying"),
            settings=settings,
            jobs={"smoke": JobState("succeeded")},
            green=READY_GREEN,
            gate=gate,
            now=NOW + elapsed,
        )
    )
    assert decision.state.phase == next_phase


def promoted_green(now: datetime = NOW) -> RolloutState:
    decision = decide(
        observe(
            at("Verifying", schema_revision="0002", migrated=True),
            jobs={"smoke": JobState("succeeded")},
            green=READY_GREEN,
            now=now,
        )
    )
    return decision.state


def test_instant_rollback_while_the_old_colour_still_runs() -> None:
    state = promoted_green()
    assert state.phase == "ScalingDown"
    rolled = decide(observe(state, green=READY_GREEN, requests=Requests(rollback_to=0)))
    assert (rolled.state.active_color, rolled.state.active_image) == ("blue", "app:1")
    assert rolled.intent.active_service_color == "blue"
    assert rolled.state.phase == "Downgrading"  # schema 0002 -> 0001, with the image that knows 0002
    [job] = rolled.intent.jobs
    assert (job.kind, job.image, job.schema_revision) == ("downgrade", "app:2", "0001")
    assert rolled.state.held_image == "app:2"
    done = decide(
        observe(
            rolled.state,
            green=READY_GREEN,
            jobs={"downgrade": JobState("succeeded", "0001")},
            now=NOW + timedelta(minutes=10),
        )
    )
    assert done.state.phase == "Idle" and done.state.active_image == "app:1"
    assert decide(observe(done.state, green=READY_GREEN)).state == done.state  # spec still says app:2: held


def test_rollback_after_scale_down_downgrades_then_redeploys() -> None:
    state = decide(observe(promoted_green(), green=READY_GREEN, now=NOW + timedelta(minutes=6))).state
    assert state.phase == "Idle"
    scaled = DeploymentState(True, "app:1", 0, 0, 0)
    rolled = decide(observe(state, green=READY_GREEN, blue=scaled, requests=Requests(rollback_to=1)))
    assert rolled.state.phase == "Downgrading" and rolled.state.target_image == "app:1"
    assert rolled.state.target_color == "blue" and rolled.intent.active_service_color == "green"
    deploying = decide(
        observe(rolled.state, green=READY_GREEN, blue=scaled, jobs={"downgrade": JobState("succeeded", "0001")})
    )
    assert deploying.state.phase == "Deploying" and deploying.intent.deployments["blue"] == ("app:1", 2)


def test_rollback_to_an_unknown_revision_is_refused() -> None:
    decision = decide(
        observe(IDLE_ON_BLUE, settings=replace(SETTINGS, image="app:1"), requests=Requests(rollback_to=7))
    )
    assert decision.state == IDLE_ON_BLUE and decision.events[0].reason == "RollbackRejected"
    assert decision.handled.rollback_to == 7


def test_deciding_twice_changes_nothing() -> None:
    first = decide(observe(IDLE_ON_BLUE, settings=replace(SETTINGS, image="app:1")))
    assert first.state == IDLE_ON_BLUE and first.events == []


def test_status_round_trip() -> None:
    state = replace(promoted_green(), failure=None)
    assert RolloutState.from_status(state.to_status()) == state
