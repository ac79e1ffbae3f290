"""The verdict of a stage's analysis, the same before the switch (on the preview) and after it (on
the active Service): the built-in metric gate (wait for the window, then pass, fail, or wait for
data until the deadline) and the checks a team defined (`metric_checks`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from ragcorp_operator.rollout.decision import Event
from ragcorp_operator.rollout.inputs import GateResult, Observed, RolloutPolicy
from ragcorp_operator.rollout.metric_checks import (
    AnalysisRun,
    MetricCheck,
    Stage,
    checks_for,
    current_run,
    describe,
    due,
    finished,
    record,
    with_run,
)
from ragcorp_operator.rollout.state import RolloutState


@dataclass(frozen=True)
class Verdict:
    outcome: Literal["pass", "wait", "fail"]
    #: For a failure: the reason (a condition's and an Event's) and what it means.
    reason: str = ""
    message: str = ""


WAIT = Verdict("wait")
PASS = Verdict("pass")


def judge(gate: GateResult | None, elapsed: timedelta, policy: RolloutPolicy, subject: str) -> Verdict:
    """`elapsed` counts from the start of the gate's window (verification, or the switch).

    Prometheus unreachable or erroring ("unmeasured") is never a pass: it fails at the deadline
    whatever `onNoData` says. No requests at all ("nodata") follows `onNoData`."""
    if elapsed < policy.gate_window or gate is None:
        return WAIT
    past_deadline = elapsed > policy.gate_deadline
    if gate == "fail":
        return Verdict("fail", "MetricGateFailed", f"{subject}'s error rate or p95 latency is over its threshold")
    if gate == "unmeasured":
        if not past_deadline:
            return WAIT
        return Verdict(
            "fail",
            "MetricsUnavailable",
            f"Prometheus could not be queried for {subject}'s metrics until the gate's deadline",
        )
    if gate == "nodata":
        if policy.on_no_data == "fail" or (policy.on_no_data == "wait" and past_deadline):
            return Verdict("fail", "NoMetrics", f"no metrics reached Prometheus for {subject}")
        if policy.on_no_data == "wait":
            return WAIT
    return PASS


def judged_after_promotion(policy: RolloutPolicy) -> bool:
    """Whether anything judges the active Service after the switch (the gate, or a check)."""
    gate = policy.gate_enabled and policy.gate_after_promotion
    return gate or bool(checks_for(policy.checks, "postPromotion"))


def stage_window(state: RolloutState) -> tuple[Stage, datetime] | None:
    """The analysis stage running now and when its window opened: verification on the preview,
    or the time after the switch while the previous colour still runs."""
    if state.phase == "Verifying" and state.step_started_at is not None:
        return "prePromotion", state.step_started_at
    if state.phase == "ScalingDown" and not state.verified_after_promotion and state.promoted_at is not None:
        return "postPromotion", state.promoted_at
    return None


def running_checks(state: RolloutState, policy: RolloutPolicy) -> tuple[AnalysisRun, tuple[MetricCheck, ...]] | None:
    """The stage's run (recorded, or new) and its checks; None when no check runs now."""
    window = stage_window(state)
    if window is None or policy.paused:
        return None
    stage, started = window
    checks = checks_for(policy.checks, stage)
    if not checks:
        return None
    return current_run(state.analysis, policy.checks, stage, state.revision, started), checks


def due_checks(state: RolloutState, policy: RolloutPolicy, now: datetime) -> tuple[MetricCheck, ...]:
    """What the read half measures this pass."""
    running = running_checks(state, policy)
    return due(*running, now) if running else ()


def judge_stage(
    observed: Observed, state: RolloutState, gate_judged: bool, subject: str, events: list[Event]
) -> tuple[Verdict, RolloutState]:
    """The built-in gate's verdict (when `gate_judged`) and the stage's checks', as one: a failure
    of either fails, either waiting waits. The checks' measurements are counted into the state."""
    policy, now = observed.policy, observed.now
    window = stage_window(state)  # None only for a status missing its times: the window opens now
    verdict = (
        judge(observed.gate, now - window[1] if window else timedelta(0), policy, subject) if gate_judged else PASS
    )
    running = running_checks(state, policy)
    if running is None:
        return verdict, state
    run = record(running[0], running[1], observed.measurements, now)
    by_name = {check.name: check for check in running[1]}
    for result in finished(state.analysis, run):
        line = describe(result, by_name.get(result.name)) + (" (dry run: not acted on)" if result.dry_run else "")
        passed = result.phase == "Successful"
        events.append(Event("Normal" if passed else "Warning", f"AnalysisCheck{result.phase}", line))
    state = replace(state, analysis=with_run(state.analysis, run))
    acted_on = [result for result in run.results if not result.dry_run]
    for result in acted_on:
        if result.phase in ("Failed", "Inconclusive") and verdict.outcome != "fail":
            reason = "AnalysisFailed" if result.phase == "Failed" else "AnalysisInconclusive"
            verdict = Verdict("fail", reason, f"{subject}: {describe(result, by_name.get(result.name))}")
    if verdict.outcome == "pass" and any(result.phase == "Running" for result in run.results):
        verdict = WAIT
    return verdict, state
