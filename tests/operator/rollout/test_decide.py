"""The rollout state machine, table-driven over its states and events (pure, no cluster)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ragcorp_operator.naming import Color
from ragcorp_operator.plan import conditions
from ragcorp_operator.rollout import (
    GATE_POLL,
    DeploymentState,
    GateResult,
    HistoryEntry,
    JobKind,
    JobState,
    Observed,
    Requests,
    RolloutPolicy,
    RolloutState,
    decide,
    next_wakeup,
)
from ragcorp_operator.rollout.analysis import due_checks
from ragcorp_operator.rollout.metric_checks import Measurement, MetricCheck

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
POLICY = RolloutPolicy(
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


def ready(image: str, replicas: int = 2) -> DeploymentState:
    """A Deployment `kubectl rollout status` calls done, as the Deployment controller reports it."""
    return DeploymentState(True, image, replicas, replicas, replicas, replicas, replicas, 1, 1)


READY_BLUE = ready("app:1")
READY_GREEN = ready("app:2")
ABSENT = DeploymentState()
SUCCEEDED = JobState("succeeded", "0002")
NO_REQUESTS = Requests()


def observe(
    state: RolloutState,
    *,
    policy: RolloutPolicy = POLICY,
    green: DeploymentState = ABSENT,
    jobs: dict[JobKind, JobState] | None = None,
    now: datetime = NOW,
    gate: GateResult | None = None,
    requests: Requests = NO_REQUESTS,
    blue: DeploymentState = READY_BLUE,
    schema_job_elsewhere: bool = False,
    serving_color: Color | None = None,
    measurements: tuple[Measurement, ...] = (),
) -> Observed:
    """What the reconciler would see; the active Service selects what the last pass made active."""
    serving_color = serving_color or state.active_color
    return Observed(
        policy,
        state,
        {"blue": blue, "green": green},
        jobs or {},
        now,
        gate,
        requests,
        schema_job_elsewhere,
        serving_color,
        measurements,
    )


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
    decision = decide(observe(RolloutState(), policy=replace(POLICY, image="app:1")))
    assert (decision.state.phase, decision.state.target_color, decision.state.revision) == ("Migrating", "blue", 1)
    assert [j.kind for j in decision.intent.jobs] == ["migrate"]
    assert decision.intent.deployments == {}


def test_image_change_backs_up_then_migrates_before_deploying() -> None:
    policy = replace(POLICY, backup_enabled=True)
    first = decide(observe(IDLE_ON_BLUE, policy=policy))
    assert first.state.phase == "BackingUp" and [j.kind for j in first.intent.jobs] == ["backup"]
    assert "green" not in first.intent.deployments and first.intent.active_service_color == "blue"
    second = decide(observe(first.state, policy=policy, jobs={"backup": JobState("succeeded")}))
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
    policy = replace(POLICY, keep_previous=False, scale_down_delay=timedelta(0))
    decision = decide(observe(at("Verifying"), policy=policy, jobs={"smoke": JobState("succeeded")}, green=READY_GREEN))
    assert decision.state.phase == "ScalingDown", "the old colour serves until the switch is seen"
    done = decide(observe(decision.state, policy=policy, green=READY_GREEN))
    assert done.state.phase == "Idle" and done.intent.deployments == {"green": ("app:2", 2)}


def test_standby_not_ready_in_time_aborts_and_traffic_stays() -> None:
    not_ready = DeploymentState(True, "app:2", 2, 1, 2)
    late = decide(observe(at("Deploying"), green=not_ready, now=NOW + timedelta(minutes=11)))
    assert late.state.phase == "Aborted" and late.state.failure and late.state.failure.reason == "NotReady"
    assert late.intent.active_service_color == "blue" and late.intent.deployments["blue"] == ("app:1", 2)
    assert late.state.history[-1].outcome == "aborted"


def test_abort_downgrades_with_the_new_image_to_the_recorded_revision() -> None:
    policy = replace(POLICY, downgrade_on_abort=True)
    state = at("Verifying", schema_revision="0002", migrated=True)
    aborted = decide(observe(state, policy=policy, jobs={"smoke": JobState("failed")}, green=READY_GREEN))
    assert aborted.state.phase == "Downgrading"
    [job] = aborted.intent.jobs
    assert (job.kind, job.image, job.schema_revision) == ("downgrade", "app:2", "0001")
    done = decide(observe(aborted.state, policy=policy, jobs={"downgrade": JobState("succeeded", "0001")}))
    assert done.state.phase == "Aborted" and done.state.schema_revision == "0001"
    assert done.state.failure and done.state.failure.reason == "SmokeTestFailed"


def test_an_aborted_rollout_waits_for_a_new_image_or_a_retry() -> None:
    aborted = decide(observe(at("Deploying"), now=NOW + timedelta(hours=1))).state
    again = decide(observe(aborted, now=NOW + timedelta(hours=2)))
    assert again.state == aborted and again.events == []
    retried = decide(observe(aborted, requests=Requests(retry=True)))
    assert retried.state.phase == "Migrating" and retried.state.revision == 3 and retried.handled.retry


def test_a_new_image_during_a_rollout_supersedes_it() -> None:
    decision = decide(observe(at("Deploying"), policy=replace(POLICY, image="app:3")))
    assert (decision.state.phase, decision.state.revision, decision.state.target_image) == ("Migrating", 3, "app:3")
    assert [(j.kind, j.revision) for j in decision.intent.jobs] == [("migrate", 3)]
    assert decision.state.history[-1].outcome == "superseded"


def test_manual_promotion_and_abort() -> None:
    manual = replace(POLICY, auto_promote=False)
    waiting = decide(observe(at("Verifying"), policy=manual, jobs={"smoke": JobState("succeeded")}, green=READY_GREEN))
    assert waiting.state.phase == "Promoting" and waiting.intent.active_service_color == "blue"
    promoted = decide(observe(waiting.state, policy=manual, green=READY_GREEN, requests=Requests(promote=True)))
    assert promoted.state.active_color == "green" and promoted.handled.promote
    aborted = decide(observe(waiting.state, policy=manual, green=READY_GREEN, requests=Requests(abort=True)))
    assert aborted.state.phase == "Aborted" and aborted.state.failure and aborted.state.failure.reason == "ManualAbort"


@pytest.mark.parametrize("phase", ["Migrating", "Deploying", "Verifying", "Promoting"])
def test_a_revert_before_the_switch_aborts_and_the_reverted_image_never_takes_traffic(phase: str) -> None:
    """spec.image back to the serving image mid-rollout (a GitOps revert): an abort to the stable
    colour, the schema downgraded when it was migrated, and then nothing left running."""
    policy = replace(POLICY, image="app:1", downgrade_on_abort=True)
    migrated = phase != "Migrating"
    state = at(phase, schema_revision="0002" if migrated else "0001", migrated=migrated)  # type: ignore[arg-type]
    jobs = {"smoke": SUCCEEDED} if phase == "Verifying" else {}
    reverted = decide(observe(state, policy=policy, green=READY_GREEN, jobs=jobs))
    assert reverted.intent.active_service_color == "blue" and reverted.state.active_image == "app:1"
    assert reverted.state.phase == ("Downgrading" if migrated else "Aborted")
    assert "Reverted" in [e.reason for e in reverted.events]
    if migrated:
        [job] = reverted.intent.jobs
        assert (job.kind, job.image, job.schema_revision) == ("downgrade", "app:2", "0001")
        reverted = decide(
            observe(reverted.state, policy=policy, green=READY_GREEN, jobs={"downgrade": JobState("succeeded", "0001")})
        )
    settled = decide(observe(reverted.state, policy=policy, green=READY_GREEN, now=NOW + timedelta(minutes=5)))
    assert settled.state.phase == "Idle" and settled.state.schema_revision == "0001"
    assert settled.intent.active_service_color == "blue" and settled.intent.deployments["blue"] == ("app:1", 2)


def test_a_rollback_redeploying_the_old_image_is_not_mistaken_for_a_revert() -> None:
    """After the old colour scaled away, a rollback deploys the old image again while spec.image still
    names the newer one (held): that is the rollback at work, not a revert to abort."""
    idle_on_green = replace(
        IDLE_ON_BLUE,
        revision=2,
        active_color="green",
        active_image="app:2",
        previous_color="blue",
        previous_image="app:1",
        schema_revision="0001",
        history=(PROMOTED_1, HistoryEntry(2, "app:2", "0001", "promoted", NOW.isoformat())),
    )
    rolled = decide(observe(idle_on_green, blue=ABSENT, green=READY_GREEN, requests=Requests(rollback_to=0)))
    assert rolled.state.phase == "Deploying" and rolled.state.target_image == "app:1"
    deploying = decide(observe(rolled.state, blue=ABSENT, green=READY_GREEN))
    assert deploying.state.phase == "Deploying" and deploying.intent.deployments["blue"] == ("app:1", 2)
    assert "Reverted" not in [e.reason for e in deploying.events]


def test_a_revert_during_a_migration_waits_for_it_then_undoes_it() -> None:
    policy = replace(POLICY, image="app:1", downgrade_on_abort=True)
    running = decide(observe(at("Migrating"), policy=policy, jobs={"migrate": JobState("running")}))
    assert running.state.phase == "Migrating" and running.state.abort_requested, "never killed halfway"
    finished = decide(observe(running.state, policy=policy, jobs={"migrate": JobState("succeeded", "0002")}))
    assert finished.state.phase == "Downgrading" and finished.state.schema_revision == "0002"


def test_an_abort_in_the_pass_a_migration_finished_records_its_revision_first() -> None:
    """Status names the revision the Job reported, and the downgrade runs from there."""
    policy = replace(POLICY, downgrade_on_abort=True)
    aborted = decide(
        observe(
            at("Migrating"),
            policy=policy,
            jobs={"migrate": JobState("succeeded", "0002")},
            requests=Requests(abort=True),
        )
    )
    assert aborted.state.schema_revision == "0002" and aborted.state.migrated
    assert aborted.state.phase == "Downgrading"
    [job] = aborted.intent.jobs
    assert (job.kind, job.schema_revision) == ("downgrade", "0001")


def test_a_revert_after_the_switch_is_an_instant_rollback_with_the_schema() -> None:
    """While the previous colour still runs, the revert moves traffic back at once, and the schema
    goes back with the newer image (the old one cannot read the newer schema's revision)."""
    state = promoted_green()
    reverted = decide(observe(state, policy=replace(POLICY, image="app:1"), green=READY_GREEN))
    assert reverted.intent.active_service_color == "blue" and reverted.state.active_image == "app:1"
    [job] = reverted.intent.jobs
    assert (job.kind, job.image, job.schema_revision) == ("downgrade", "app:2", "0001")
    assert "Reverted" in [e.reason for e in reverted.events]


def test_putting_spec_image_back_to_the_active_image_drops_an_aborted_rollout() -> None:
    aborted = decide(
        observe(at("Verifying"), jobs={"smoke": JobState("failed", message="HTTP 500")}, green=READY_GREEN)
    )
    assert aborted.state.phase == "Aborted"
    still = decide(observe(aborted.state))
    assert still.state.phase == "Aborted", "the same spec keeps the failure on record"
    reverted = decide(observe(aborted.state, policy=replace(POLICY, image="app:1")))
    assert (reverted.state.phase, reverted.state.target_image, reverted.state.failure) == ("Idle", None, None)
    assert reverted.intent.deployments == {"blue": ("app:1", 2)}
    assert [e.reason for e in reverted.events] == ["RolloutDropped"]


@pytest.mark.parametrize(
    ("gate", "on_no_data", "elapsed", "next_phase"),
    [
        (None, "wait", timedelta(minutes=6), "Verifying"),
        ("pass", "wait", timedelta(minutes=1), "Verifying"),  # the window has not passed yet
        ("pass", "wait", timedelta(minutes=6), "ScalingDown"),
        ("fail", "wait", timedelta(minutes=6), "Aborted"),
        ("nodata", "wait", timedelta(minutes=6), "Verifying"),
        ("nodata", "wait", timedelta(minutes=16), "Aborted"),
        ("nodata", "pass", timedelta(minutes=6), "ScalingDown"),
        ("nodata", "fail", timedelta(minutes=6), "Aborted"),
        # Prometheus unreachable or erroring is a failure to measure: waited on, then an abort,
        # whatever onNoData says (even "pass").
        ("unmeasured", "pass", timedelta(minutes=6), "Verifying"),
        ("unmeasured", "wait", timedelta(minutes=6), "Verifying"),
        ("unmeasured", "pass", timedelta(minutes=16), "Aborted"),
        ("unmeasured", "fail", timedelta(minutes=16), "Aborted"),
    ],
)
def test_metric_gate(gate: GateResult | None, on_no_data: str, elapsed: timedelta, next_phase: str) -> None:
    policy = replace(POLICY, gate_enabled=True, on_no_data=on_no_data)  # type: ignore[arg-type]
    decision = decide(
        observe(
            at("Verifying"),
            policy=policy,
            jobs={"smoke": JobState("succeeded")},
            green=READY_GREEN,
            gate=gate,
            now=NOW + elapsed,
        )
    )
    assert decision.state.phase == next_phase
    if gate == "unmeasured" and next_phase == "Aborted":
        assert decision.state.failure is not None and "MetricsUnavailable" in str(decision.state.failure)


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
    decision = decide(observe(IDLE_ON_BLUE, policy=replace(POLICY, image="app:1"), requests=Requests(rollback_to=7)))
    assert decision.state == IDLE_ON_BLUE and decision.events[0].reason == "RollbackRejected"
    assert decision.handled.rollback_to == 7


def test_deciding_twice_changes_nothing() -> None:
    first = decide(observe(IDLE_ON_BLUE, policy=replace(POLICY, image="app:1")))
    assert first.state == IDLE_ON_BLUE and first.events == []


def test_status_round_trip() -> None:
    state = replace(promoted_green(), failure=None)
    assert RolloutState.from_status(state.to_status()) == state


# --- switching traffic safely ----------------------------------------------------------------


def test_a_new_migration_waits_while_another_of_the_resource_still_runs() -> None:
    superseding = decide(observe(at("Migrating"), policy=replace(POLICY, image="app:3"), schema_job_elsewhere=True))
    assert superseding.state.phase == "Migrating" and superseding.state.target_image == "app:3"
    assert superseding.intent.jobs == (), "no second migration while the superseded one's Pod runs"
    assert next_wakeup(superseding.state, POLICY, NOW, schema_job_elsewhere=True) == timedelta(seconds=2)
    free = decide(observe(superseding.state, policy=replace(POLICY, image="app:3")))
    assert [(j.kind, j.revision) for j in free.intent.jobs] == [("migrate", 3)]


def test_an_abort_during_a_migration_waits_for_it_then_downgrades() -> None:
    policy = replace(POLICY, downgrade_on_abort=True)
    running = {"migrate": JobState("running")}
    pending = decide(observe(at("Migrating"), policy=policy, jobs=running, requests=Requests(abort=True)))
    assert pending.state.phase == "Migrating" and pending.state.abort_requested and pending.handled.abort
    assert [j.kind for j in pending.intent.jobs] == ["migrate"], "the migration is left to finish"
    assert pending.events[0].reason == "AbortPending"
    finished = decide(observe(pending.state, policy=policy, jobs={"migrate": SUCCEEDED}))
    assert finished.state.phase == "Downgrading" and finished.state.schema_revision == "0002"
    [job] = finished.intent.jobs
    assert (job.kind, job.image, job.schema_revision) == ("downgrade", "app:2", "0001")
    assert finished.state.failure and finished.state.failure.reason == "ManualAbort"
    assert "green" not in finished.intent.deployments


def test_an_abort_before_the_migration_started_takes_effect_at_once() -> None:
    aborted = decide(observe(at("Migrating"), requests=Requests(abort=True)))
    assert aborted.state.phase == "Aborted" and aborted.state.schema_revision == "0001"


@pytest.mark.parametrize(
    ("green", "why"),
    [
        (replace(READY_GREEN, observed_generation=0), "the controller has not seen the latest spec"),
        (replace(READY_GREEN, total_replicas=3), "an old Pod is still terminating"),
        (replace(READY_GREEN, available_replicas=1), "one Pod is ready but not yet available"),
        (replace(READY_GREEN, ready_replicas=1), "one Pod is not ready"),
    ],
)
def test_traffic_never_moves_to_a_colour_kubectl_rollout_status_would_not_pass(
    green: DeploymentState, why: str
) -> None:
    promoting = replace(at("Promoting"), promotion_approved=True)
    decision = decide(observe(promoting, green=green))
    assert decision.state.phase == "Promoting" and decision.intent.active_service_color == "blue", why
    switched = decide(observe(decision.state, green=READY_GREEN))
    assert switched.intent.active_service_color == "green"


def test_without_a_scale_down_delay_the_old_colour_shrinks_only_after_the_switch_was_seen() -> None:
    policy = replace(POLICY, scale_down_delay=timedelta(0))
    promoted = decide(observe(at("Verifying"), policy=policy, jobs={"smoke": JobState("succeeded")}, green=READY_GREEN))
    assert promoted.state.phase == "ScalingDown" and promoted.intent.deployments["blue"] == ("app:1", 2)
    not_yet = decide(observe(promoted.state, policy=policy, green=READY_GREEN, serving_color="blue"))
    assert not_yet.state.phase == "ScalingDown", "the Service still sends traffic to blue"
    done = decide(observe(promoted.state, policy=policy, green=READY_GREEN, serving_color="green"))
    assert done.state.phase == "Idle" and done.intent.deployments["blue"] == ("app:1", 0)


def test_with_autoscaling_the_new_colour_matches_the_old_ones_current_replicas_before_the_switch() -> None:
    policy = replace(POLICY, max_replicas=8)
    busy_blue = ready("app:1", 6)  # the HPA scaled blue from 2 to 6 under load
    deploying = decide(observe(at("Deploying"), policy=policy, blue=busy_blue, green=READY_GREEN))
    assert deploying.state.phase == "Deploying" and deploying.intent.deployments["green"] == ("app:2", 6)
    ready_green = decide(observe(at("Deploying"), policy=policy, blue=busy_blue, green=ready("app:2", 6)))
    assert ready_green.state.phase == "Verifying"
    capped = decide(observe(at("Deploying"), policy=policy, blue=ready("app:1", 12), green=READY_GREEN))
    assert capped.intent.deployments["green"] == ("app:2", 8), "never past the HPA's maximum"


def test_with_autoscaling_the_old_colour_keeps_the_size_it_served_with_until_the_delay_is_over() -> None:
    """Never shrink what serves: the switch moves traffic, the old colour keeps the HPA's size until
    scaleDownDelaySeconds after it (endpoints take time to follow a Service), then goes to zero."""
    policy = replace(POLICY, max_replicas=8)
    busy_blue = ready("app:1", 6)
    verifying = at("Verifying", schema_revision="0002", migrated=True)
    switched = decide(
        observe(verifying, policy=policy, blue=busy_blue, green=ready("app:2", 6), jobs={"smoke": SUCCEEDED})
    )
    assert switched.state.phase == "ScalingDown" and switched.intent.active_service_color == "green"
    assert switched.intent.deployments["blue"] == ("app:1", 6), "not the spec's 2 in the pass that moves traffic"
    later = decide(
        observe(switched.state, policy=policy, blue=busy_blue, green=ready("app:2", 6), now=NOW + timedelta(minutes=3))
    )
    assert later.intent.deployments["blue"] == ("app:1", 6)
    done = decide(
        observe(
            switched.state,
            policy=policy,
            blue=busy_blue,
            green=ready("app:2", 6),
            serving_color="green",
            now=NOW + timedelta(minutes=6),
        )
    )
    assert done.state.phase == "Idle" and done.intent.deployments["blue"] == ("app:1", 0)


def test_a_failed_post_promotion_gate_moves_traffic_first_and_scales_down_after_the_abort_delay() -> None:
    """Roll back traffic first: the colour that carried all traffic keeps its size while the Service
    moves back, and only shrinks after abortScaleDownDelaySeconds."""
    policy = replace(GATED, max_replicas=8, abort_scale_down_delay=timedelta(minutes=2))
    state = promoted_with_gate()
    busy_green = ready("app:2", 7)  # the HPA grew the new colour after the switch
    failed = decide(
        observe(state, policy=policy, blue=READY_BLUE, green=busy_green, gate="fail", now=NOW + timedelta(minutes=2))
    )
    assert failed.intent.active_service_color == "blue"
    assert failed.intent.deployments["green"] == ("app:2", 7), "not scaled down in the pass that moves traffic"
    assert failed.state.phase == "Downgrading"
    downgraded = decide(
        observe(
            failed.state,
            policy=policy,
            green=busy_green,
            jobs={"downgrade": JobState("succeeded", "0001")},
            now=NOW + timedelta(minutes=3),
        )
    )
    assert downgraded.state.phase == "Aborted" and downgraded.intent.deployments["green"] == ("app:2", 7)
    later = decide(observe(downgraded.state, policy=policy, green=busy_green, now=NOW + timedelta(minutes=5)))
    assert later.intent.deployments.get("green", ("app:2", 0))[1] == 0


def test_a_preview_runs_fewer_replicas_and_is_scaled_up_and_ready_before_the_switch() -> None:
    policy = replace(POLICY, preview_replicas=1, replicas=3)
    blue = ready("app:1", 3)
    deploying = decide(observe(at("Deploying"), policy=policy, blue=blue, green=ready("app:2", 1)))
    assert deploying.state.phase == "Verifying" and deploying.intent.deployments["green"] == ("app:2", 1)
    verified = decide(
        observe(deploying.state, policy=policy, blue=blue, green=ready("app:2", 1), jobs={"smoke": SUCCEEDED})
    )
    assert verified.state.phase == "Promoting" and verified.intent.deployments["green"] == ("app:2", 3)
    assert verified.intent.active_service_color == "blue", "one preview Pod never takes all the traffic"
    switched = decide(observe(verified.state, policy=policy, blue=blue, green=ready("app:2", 3)))
    assert switched.intent.active_service_color == "green"


def test_auto_promotion_after_a_delay_without_auto_promote() -> None:
    policy = replace(POLICY, auto_promote=False, auto_promotion_after=timedelta(minutes=2))
    waiting = decide(observe(at("Promoting"), policy=policy, green=READY_GREEN, now=NOW + timedelta(minutes=1)))
    assert waiting.state.phase == "Promoting"
    assert next_wakeup(waiting.state, policy, NOW + timedelta(minutes=1)) == timedelta(minutes=1)
    promoted = decide(observe(at("Promoting"), policy=policy, green=READY_GREEN, now=NOW + timedelta(minutes=2)))
    assert promoted.intent.active_service_color == "green"


def test_an_aborted_colour_lingers_for_debugging_then_goes() -> None:
    policy = replace(POLICY, keep_previous=False)
    aborted = decide(observe(at("Verifying"), policy=policy, jobs={"smoke": JobState("failed")}, green=READY_GREEN))
    assert aborted.state.phase == "Aborted" and aborted.intent.deployments["green"] == ("app:2", 2)
    assert aborted.intent.active_service_color == "blue" and aborted.intent.preview_service_color == "blue"
    assert next_wakeup(aborted.state, policy, NOW) == timedelta(seconds=30)
    later = decide(observe(aborted.state, policy=policy, green=READY_GREEN, now=NOW + timedelta(seconds=30)))
    assert "green" not in later.intent.deployments


GATED = replace(POLICY, gate_enabled=True, gate_window=timedelta(minutes=1), on_no_data="fail")


def promoted_with_gate() -> RolloutState:
    verifying = at("Verifying", schema_revision="0002", migrated=True)
    state = decide(
        observe(
            verifying,
            policy=GATED,
            jobs={"smoke": SUCCEEDED},
            green=READY_GREEN,
            gate="pass",
            now=NOW + timedelta(minutes=1),
        )
    ).state
    assert state.phase == "ScalingDown" and not state.verified_after_promotion
    return state


def test_the_post_promotion_gate_holds_the_old_colour_then_lets_it_go() -> None:
    state = promoted_with_gate()
    early = decide(
        observe(state, policy=GATED, green=READY_GREEN, gate="pass", now=NOW + timedelta(minutes=1, seconds=30))
    )
    assert early.state.phase == "ScalingDown" and not early.state.verified_after_promotion, "the window is not over"
    passed = decide(observe(state, policy=GATED, green=READY_GREEN, gate="pass", now=NOW + timedelta(minutes=2)))
    assert passed.state.verified_after_promotion and passed.state.phase == "ScalingDown"
    done = decide(observe(passed.state, policy=GATED, green=READY_GREEN, now=NOW + timedelta(minutes=6)))
    assert done.state.phase == "Idle"


def test_a_failed_post_promotion_gate_moves_traffic_and_the_schema_back() -> None:
    state = promoted_with_gate()
    failed = decide(observe(state, policy=GATED, green=READY_GREEN, gate="fail", now=NOW + timedelta(minutes=2)))
    assert failed.intent.active_service_color == "blue" and failed.state.active_image == "app:1"
    assert failed.state.phase == "Downgrading"
    [job] = failed.intent.jobs
    assert (job.kind, job.image, job.schema_revision) == ("downgrade", "app:2", "0001")
    assert failed.state.history[-1].reason == "PostPromotionGateFailed"
    [told] = [event for event in failed.events if event.reason == "PostPromotionGateFailed"]
    assert told.triggers == ("aborted",), "a team hears of an automatic rollback as an abort"
    done = decide(
        observe(failed.state, policy=GATED, green=READY_GREEN, jobs={"downgrade": JobState("succeeded", "0001")})
    )
    assert done.state.phase == "Aborted" and done.state.schema_revision == "0001"
    again = decide(observe(done.state, policy=GATED, green=READY_GREEN))
    assert again.state.phase == "Aborted", "spec.image still names app:2: it is not rolled out again by itself"


def test_an_unmeasured_post_promotion_gate_is_never_a_pass() -> None:
    """After the switch, a Prometheus that cannot be asked keeps the old colour until the gate's
    deadline, then traffic goes back, even with onNoData: pass."""
    state = promoted_with_gate()
    policy = replace(GATED, on_no_data="pass")
    waiting = decide(
        observe(state, policy=policy, green=READY_GREEN, gate="unmeasured", now=NOW + timedelta(minutes=6))
    )
    assert waiting.state.phase == "ScalingDown" and not waiting.state.verified_after_promotion
    assert waiting.intent.active_service_color == "green" and "blue" in waiting.intent.deployments
    late = decide(observe(state, policy=policy, green=READY_GREEN, gate="unmeasured", now=NOW + timedelta(minutes=17)))
    assert late.intent.active_service_color == "blue" and late.state.active_image == "app:1"


def test_a_manual_rollback_in_the_post_promotion_window_is_not_judged_by_its_gate() -> None:
    """Rolled back by hand while the gate still watched app:2: a failing gate now must not move
    traffic back to app:2."""
    state = promoted_with_gate()
    rolled = decide(observe(state, policy=GATED, green=READY_GREEN, requests=Requests(rollback_to=0)))
    assert rolled.intent.active_service_color == "blue" and rolled.state.active_image == "app:1"
    after = rolled.state
    if after.phase == "Downgrading":
        after = decide(
            observe(after, policy=GATED, green=READY_GREEN, jobs={"downgrade": JobState("succeeded", "0001")})
        ).state
    judged = decide(observe(after, policy=GATED, green=READY_GREEN, gate="fail", now=NOW + timedelta(minutes=3)))
    assert judged.intent.active_service_color == "blue" and judged.state.active_image == "app:1"


def test_a_revision_the_gate_aborted_is_never_a_rollback_target() -> None:
    """`kubectl ragcorp rollback` right after an automatic rollback must not promote the failed image again."""
    state = promoted_with_gate()
    failed = decide(observe(state, policy=GATED, green=READY_GREEN, gate="fail", now=NOW + timedelta(minutes=2)))
    done = decide(
        observe(failed.state, policy=GATED, green=READY_GREEN, jobs={"downgrade": JobState("succeeded", "0001")})
    )
    assert done.state.active_image == "app:1"
    again = decide(observe(done.state, policy=GATED, green=READY_GREEN, requests=Requests(rollback_to=0)))
    assert again.state.active_image == "app:1" and again.state.revision == done.state.revision
    assert [e.reason for e in again.events] == ["RollbackRejected"]


def test_a_migration_waiting_on_another_schema_job_says_so_and_gives_up_after_its_deadline() -> None:
    """A superseded migration's Pod stuck Terminating: the new migration waits (two never run at
    once), says what for, and after the Job deadline plus a grace aborts with nothing migrated."""
    waiting = decide(observe(at("Migrating"), schema_job_elsewhere=True, now=NOW + timedelta(minutes=5)))
    assert waiting.state.phase == "Migrating" and waiting.intent.jobs == ()
    assert "stuck Terminating" in waiting.waiting_for
    [progressing] = [c for c in conditions(waiting, active_ready=True) if c.type == "Progressing"]
    assert progressing.message.startswith("rolling out app:2: waiting for another revision's schema Job")
    late = decide(observe(at("Migrating"), schema_job_elsewhere=True, now=NOW + timedelta(minutes=13)))
    assert late.state.phase == "Aborted" and late.state.failure is not None
    assert late.state.failure.reason == "JobNotStarted" and "stuck Terminating" in late.state.failure.message
    assert late.intent.active_service_color == "blue" and late.state.schema_revision == "0001"


@pytest.mark.parametrize(
    ("phase", "elapsed", "reason"),
    [
        ("Verifying", timedelta(minutes=8), "JobNotStarted"),  # the smoke Job: 5 min + grace
        ("BackingUp", timedelta(minutes=13), "JobNotStarted"),
        ("Downgrading", timedelta(minutes=13), "DowngradeNotStarted"),
    ],
)
def test_a_job_that_never_starts_ends_its_step(phase: str, elapsed: timedelta, reason: str) -> None:
    """A quota or an admission webhook refusing the Job: the step does not wait for ever."""
    state = at(phase, downgrade_to="0001", downgrade_image="app:2", after_downgrade="Aborted")
    green = READY_GREEN if phase == "Verifying" else ABSENT
    early = decide(observe(state, green=green, now=NOW + timedelta(minutes=1)))
    assert early.state.phase == phase and "to start" in early.waiting_for
    late = decide(observe(state, green=green, now=NOW + elapsed))
    assert late.state.phase == "Aborted" and late.state.failure is not None and late.state.failure.reason == reason


def test_next_wakeup_is_the_nearest_deadline_and_none_when_only_events_matter() -> None:
    assert next_wakeup(at("Deploying"), POLICY, NOW + timedelta(minutes=4)) == timedelta(minutes=6)
    assert next_wakeup(IDLE_ON_BLUE, POLICY, NOW) is None
    assert next_wakeup(at("Migrating"), POLICY, NOW) is None, "a Job finishing is an event"
    scaling = replace(at("ScalingDown"), promoted_at=NOW)
    assert next_wakeup(scaling, POLICY, NOW + timedelta(minutes=1)) == timedelta(minutes=4)


def test_a_post_promotion_gate_still_waiting_after_the_scale_down_delay_is_polled_not_spun_on() -> None:
    """The scale-down delay over, the old colour waits for the gate: ask Prometheus again in GATE_POLL,
    not at once in a loop (nor, as a zero wake-up once did, only at the next resync)."""
    waiting = replace(at("ScalingDown"), promoted_at=NOW, step_started_at=NOW, verified_after_promotion=False)
    policy = replace(GATED, scale_down_delay=timedelta(seconds=5))
    assert next_wakeup(waiting, policy, NOW + timedelta(minutes=2)) == GATE_POLL


def test_after_the_switch_progressing_names_the_image_being_rolled_out() -> None:
    scaling = decide(observe(replace(at("ScalingDown"), promoted_at=NOW, target_image=None, active_image="app:2")))
    [progressing] = [c for c in conditions(scaling, active_ready=True) if c.type == "Progressing"]
    assert progressing.message.startswith("rolling out app:2"), progressing.message


# --- pod configs are part of a revision -------------------------------------------------------
ON_CONFIG_A = replace(IDLE_ON_BLUE, active_config="a", history=(replace(PROMOTED_1, config="a"),))


def test_a_config_change_alone_starts_a_rollout_with_the_new_config() -> None:
    decision = decide(observe(ON_CONFIG_A, policy=replace(POLICY, image="app:1", config="b")))
    state = decision.state
    assert (state.phase, state.target_image, state.target_config) == ("Migrating", "app:1", "b")
    assert decision.intent.configs == {"blue": "a"}, "the serving colour keeps its config"
    assert [job.config for job in decision.intent.jobs] == ["b"]


def test_the_same_image_and_config_start_nothing() -> None:
    decision = decide(observe(ON_CONFIG_A, policy=replace(POLICY, image="app:1", config="a")))
    assert decision.state.phase == "Idle" and decision.state.revision == 1


def test_an_unrecorded_config_is_adopted_without_a_rollout() -> None:
    """Status from before configs were revisions: the colours ran the spec's config all along."""
    decision = decide(observe(IDLE_ON_BLUE, policy=replace(POLICY, image="app:1", config="a")))
    assert (decision.state.phase, decision.state.active_config) == ("Idle", "a")


def test_an_instant_rollback_restores_the_previous_colours_config() -> None:
    after = replace(
        ON_CONFIG_A,
        phase="ScalingDown",
        revision=2,
        active_color="green",
        active_image="app:1",
        active_config="b",
        previous_color="blue",
        previous_image="app:1",
        previous_config="a",
        history=(
            replace(PROMOTED_1, config="a"),
            HistoryEntry(2, "app:1", "0001", "promoted", NOW.isoformat(), config="b"),
        ),
    )
    policy = replace(POLICY, image="app:1", config="b")
    decision = decide(observe(after, policy=policy, blue=ready("app:1"), requests=Requests(rollback_to=1)))
    state = decision.state
    assert (state.active_color, state.active_config, state.held_config) == ("blue", "a", "b")
    assert decision.intent.configs["blue"] == "a" and decision.intent.configs["green"] == "b"
    settled = decide(observe(state, policy=policy, blue=ready("app:1")))
    assert settled.state.revision == state.revision, "the spec's config is held, not rolled out again"


PAUSED = replace(POLICY, paused=True)


def test_a_paused_rollout_holds_its_phase_though_what_it_waits_for_arrived() -> None:
    """Argo Rollouts' spec.paused: the ready standby is not verified, traffic stays, nothing wakes it."""
    held = decide(observe(at("Deploying"), policy=PAUSED, green=READY_GREEN))
    assert held.state.phase == "Deploying" and held.state.paused_at == NOW
    assert [e.reason for e in held.events] == ["Paused"]
    assert held.intent.active_service_color == "blue"
    assert next_wakeup(held.state, PAUSED, NOW) is None
    again = decide(observe(held.state, policy=PAUSED, green=READY_GREEN, now=NOW + timedelta(hours=2)))
    assert again.state == held.state and not again.events
    [_, progressing, *_] = conditions(again, active_ready=True)
    assert (progressing.status, progressing.reason) == ("Unknown", "RolloutPaused")


def test_a_new_image_while_paused_waits_for_the_resume() -> None:
    idle = replace(IDLE_ON_BLUE, paused_at=NOW)
    held = decide(observe(idle, policy=replace(PAUSED, image="app:3")))
    assert held.state.phase == "Idle" and held.intent.jobs == ()
    resumed = decide(observe(held.state, policy=replace(POLICY, image="app:3"), now=NOW + timedelta(minutes=1)))
    assert resumed.state.phase in ("BackingUp", "Migrating") and resumed.state.target_image == "app:3"
    assert "Resumed" in [e.reason for e in resumed.events]


def test_requests_while_paused_are_declined_not_kept_for_later() -> None:
    requests = Requests(promote=True, abort=True)
    held = decide(observe(at("Verifying"), policy=PAUSED, green=READY_GREEN, requests=requests))
    assert held.state.phase == "Verifying" and held.handled == requests
    [declined] = [e for e in held.events if e.reason == "RequestDeclined"]
    assert declined.type == "Warning" and "promote, abort" in declined.message and "resume" in declined.message


def test_resuming_moves_the_step_timers_on_by_the_time_paused() -> None:
    """Paused for an hour while Deploying, with a 10-minute ready timeout: no abort on resume."""
    not_ready = DeploymentState(True, "app:2", 2, 1, 2)
    held = decide(observe(at("Deploying"), policy=PAUSED, green=not_ready, now=NOW + timedelta(minutes=5))).state
    resumed = decide(observe(held, green=not_ready, now=NOW + timedelta(hours=1, minutes=5)))
    assert resumed.state.phase == "Deploying" and resumed.state.paused_at is None
    assert resumed.state.step_started_at == NOW + timedelta(hours=1)
    late = decide(observe(resumed.state, green=not_ready, now=NOW + timedelta(hours=1, minutes=11)))
    assert late.state.phase == "Aborted" and late.state.failure and late.state.failure.reason == "NotReady"


# A team's analysis checks (strategy.blueGreen.analysis): measured every 30 s, three times.
P99_CHECK = MetricCheck("p99", "histogram_quantile(...)", "result <= 0.5", interval=timedelta(seconds=30), count=3)
CHECKED = replace(POLICY, checks=(P99_CHECK,))


def verify_with(state: RolloutState, policy: RolloutPolicy, values: list[float | None], **seen: object) -> list:
    """Verifying passes, one per value, 30 s apart from the stage's start: the decisions made."""
    decisions = []
    for step, value in enumerate(values):
        now = NOW + step * P99_CHECK.interval
        assert [c.name for c in due_checks(state, policy, now)] == [c.name for c in policy.checks if c.stages]
        measurements = tuple(Measurement(c.name, "prePromotion", value) for c in policy.checks)
        decision = decide(observe(state, policy=policy, now=now, measurements=measurements, **seen))  # type: ignore[arg-type]
        decisions.append(decision)
        state = decision.state
        if state.phase != "Verifying":
            break
    return decisions


def test_a_teams_check_holds_promotion_until_it_has_been_measured_count_times() -> None:
    verifying = at("Verifying", schema_revision="0002", migrated=True)
    first, second, third = verify_with(
        verifying, CHECKED, [0.2, 0.3, 0.1], jobs={"smoke": SUCCEEDED}, green=READY_GREEN
    )
    assert first.state.phase == second.state.phase == "Verifying", "the smoke test passed; the check still runs"
    assert next_wakeup(second.state, CHECKED, NOW + timedelta(seconds=30)) == timedelta(seconds=30)
    assert third.state.phase in ("Promoting", "ScalingDown")
    before_switch, after_switch = third.state.analysis
    assert (before_switch.stage, before_switch.results[0].phase) == ("prePromotion", "Successful")
    assert (after_switch.stage, after_switch.results[0].phase) == ("postPromotion", "Running")
    assert "AnalysisCheckSuccessful" in [event.reason for event in third.events]
    assert third.state.to_status()["analysis"][0]["metrics"][0]["successful"] == 3
    assert RolloutState.from_status(third.state.to_status()) == third.state, "a restarted operator resumes the run"


def test_a_failed_check_aborts_the_preview_and_keeps_traffic_where_it_was() -> None:
    verifying = at("Verifying", schema_revision="0002", migrated=True)
    [failed] = verify_with(verifying, CHECKED, [0.9], jobs={}, green=READY_GREEN)
    assert failed.state.phase == "Aborted" and failed.state.failure is not None
    assert failed.state.failure.reason == "AnalysisFailed" and "p99" in failed.state.failure.message
    assert failed.intent.active_service_color == "blue"
    assert [event.reason for event in failed.events][:2] == ["AnalysisCheckFailed", "AnalysisFailed"]


def test_a_dry_run_check_reports_its_failure_and_lets_the_rollout_go_on() -> None:
    policy = replace(POLICY, checks=(replace(P99_CHECK, dry_run=True, count=1),))
    verifying = at("Verifying", schema_revision="0002", migrated=True)
    [decision] = verify_with(verifying, policy, [0.9], jobs={"smoke": SUCCEEDED}, green=READY_GREEN)
    assert decision.state.phase != "Aborted"
    [event] = [event for event in decision.events if event.reason == "AnalysisCheckFailed"]
    assert event.type == "Warning" and "dry run: not acted on" in event.message
    assert decision.state.analysis[0].results[0].dry_run


def test_a_check_failing_after_the_switch_moves_traffic_back() -> None:
    """Post-promotion only, no built-in gate: the previous colour waits for the check, and its
    failure is the gate's: traffic back, the schema downgraded."""
    after_only = replace(POLICY, checks=(replace(P99_CHECK, stages=frozenset({"postPromotion"}), count=2),))
    verifying = at("Verifying", schema_revision="0002", migrated=True)
    promoted = decide(observe(verifying, policy=after_only, jobs={"smoke": SUCCEEDED}, green=READY_GREEN)).state
    assert promoted.phase == "ScalingDown" and not promoted.verified_after_promotion
    moment = promoted.promoted_at
    assert moment is not None and due_checks(promoted, after_only, moment) == after_only.checks
    good = decide(
        observe(
            promoted,
            policy=after_only,
            green=READY_GREEN,
            now=moment,
            measurements=(Measurement("p99", "postPromotion", 0.1),),
        )
    )
    assert good.state.phase == "ScalingDown" and "blue" in good.intent.deployments
    later = moment + timedelta(seconds=30)
    bad = decide(
        observe(
            good.state,
            policy=after_only,
            green=READY_GREEN,
            now=later,
            measurements=(Measurement("p99", "postPromotion", 2.0),),
        )
    )
    assert bad.intent.active_service_color == "blue" and bad.state.active_image == "app:1"
    assert bad.state.history[-1].reason == "PostPromotionGateFailed"
    assert bad.state.failure is not None and "p99" in bad.state.failure.message


def test_a_paused_rollout_measures_nothing() -> None:
    verifying = at("Verifying", schema_revision="0002", migrated=True)
    assert due_checks(verifying, replace(CHECKED, paused=True), NOW) == ()


def test_a_colour_still_mounting_a_token_keeps_its_template_until_its_next_rollout() -> None:
    """Pods from before the operator stopped mounting the ServiceAccount token are not restarted
    by an operator upgrade: the serving colour renders as it runs, and the token goes with the
    next rollout of each colour."""
    legacy_blue = replace(READY_BLUE, mounts_token=True)
    idle = decide(observe(IDLE_ON_BLUE, policy=replace(POLICY, image="app:1"), blue=legacy_blue))
    assert idle.intent.token_mounted == {"blue"}
    scaled_down_green = replace(ready("app:0", 0), mounts_token=True)
    deploying = decide(observe(at("Deploying"), blue=legacy_blue, green=scaled_down_green))
    assert deploying.intent.token_mounted == {"blue"}, "green rolls out with the new template"
    promoted = replace(at("ScalingDown"), active_color="green", active_image="app:2", previous_color="blue")
    promoted = replace(promoted, previous_image="app:1", target_color=None, target_image=None)
    after = decide(observe(promoted, blue=legacy_blue, green=READY_GREEN))
    assert after.intent.token_mounted == {"blue"} and "green" in after.intent.deployments


def test_a_new_revision_starts_without_the_last_ones_analysis() -> None:
    """status.analysis is the current revision's: a rollout without checks shows none, not the
    results of an older revision that had some."""
    verifying = at("Verifying", schema_revision="0002", migrated=True)
    [measured] = verify_with(verifying, CHECKED, [0.2], jobs={"smoke": SUCCEEDED}, green=READY_GREEN)
    assert measured.state.analysis
    idle = replace(measured.state, phase="Idle", active_color="green", active_image="app:2", target_color=None)
    started = decide(observe(idle, policy=replace(POLICY, image="app:3"), green=READY_GREEN))
    assert started.state.phase == "Migrating" and started.state.analysis == ()
