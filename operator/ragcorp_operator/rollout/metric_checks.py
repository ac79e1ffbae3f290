"""Analysis a platform team defines: named PromQL checks measured a number of times, before the
switch (on the preview) and after it (on the active Service), beside the built-in error rate and
p95 gate. Argo Rollouts' AnalysisRun, kept in the resource's status.

Each measurement is a success (the value meets `successCondition`), a failure, or inconclusive
(no value: an empty vector, NaN, or Prometheus not answering). A check fails once its failures
exceed `failureLimit`, is inconclusive once its inconclusive measurements exceed
`inconclusiveLimit`, and succeeds after `count` measurements otherwise. A dry-run check is
measured and reported the same way and never holds or stops a rollout.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal, cast, get_args

from ragcorp_operator.spec import ANALYSIS_STAGES, CONDITION_PATTERN, AnalysisStage

Stage = AnalysisStage
STAGES = ANALYSIS_STAGES
CheckPhase = Literal["Running", "Successful", "Failed", "Inconclusive"]

_COMPARISONS: Mapping[str, Callable[[float, float], bool]] = MappingProxyType(
    {"<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt}
)


def meets(condition: str, value: float) -> bool:
    """Whether `value` meets a `result <op> number` condition (validated by the spec already)."""
    match = re.match(CONDITION_PATTERN, condition)
    if match is None:
        raise ValueError(f"successCondition {condition!r} is not 'result <op> number'")
    return _COMPARISONS[match.group(1)](value, float(match.group(2)))


@dataclass(frozen=True)
class MetricCheck:
    """One check of `strategy.blueGreen.analysis.metrics`, as the machine sees it."""

    name: str
    #: PromQL; `{{namespace}}`, `{{service}}` (the Service judged) and `{{name}}` are filled in.
    query: str
    success_condition: str
    stages: frozenset[Stage] = frozenset(STAGES)
    interval: timedelta = timedelta(seconds=60)
    initial_delay: timedelta = timedelta(0)
    count: int = 3
    failure_limit: int = 0
    inconclusive_limit: int = 0
    dry_run: bool = False


@dataclass(frozen=True)
class Measurement:
    """One check's value this pass; None when there was none (see the module's docstring). It
    counts only for the stage it was taken for (one pass can verify, switch and start the next)."""

    name: str
    stage: Stage
    value: float | None
    error: str = ""


@dataclass(frozen=True)
class CheckResult:
    name: str
    phase: CheckPhase = "Running"
    measured: int = 0
    successes: int = 0
    failures: int = 0
    inconclusive: int = 0
    last_value: float | None = None
    last_at: datetime | None = None
    #: Why the last measurement had no value, when it had none.
    last_error: str = ""
    dry_run: bool = False


@dataclass(frozen=True)
class AnalysisRun:
    """The checks of one stage of one revision, in the order the spec lists them."""

    stage: Stage
    revision: int
    started_at: datetime
    results: tuple[CheckResult, ...] = ()

    def to_status(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "revision": self.revision,
            "startedAt": self.started_at.isoformat(),
            "metrics": [_result_status(result) for result in self.results],
        }

    @classmethod
    def from_status(cls, raw: Any) -> AnalysisRun | None:
        if not isinstance(raw, dict) or raw.get("stage") not in STAGES or not raw.get("startedAt"):
            return None
        return cls(
            stage=raw["stage"],
            revision=int(raw.get("revision") or 0),
            started_at=datetime.fromisoformat(raw["startedAt"]),
            results=tuple(_result_from(m) for m in raw.get("metrics") or [] if isinstance(m, dict) and m.get("name")),
        )


def _result_status(result: CheckResult) -> dict[str, Any]:
    status: dict[str, Any] = {
        "name": result.name,
        "phase": result.phase,
        "measured": result.measured,
        "successful": result.successes,
        "failed": result.failures,
        "inconclusive": result.inconclusive,
        "dryRun": result.dry_run,
    }
    if result.last_at is not None:
        status["lastMeasuredAt"] = result.last_at.isoformat()
        status["lastValue"] = result.last_value
    if result.last_error:
        status["lastError"] = result.last_error
    return status


def _result_from(raw: dict[str, Any]) -> CheckResult:
    last_at = raw.get("lastMeasuredAt")
    value = raw.get("lastValue")
    return CheckResult(
        name=str(raw["name"]),
        phase=cast(CheckPhase, raw["phase"]) if raw.get("phase") in get_args(CheckPhase) else "Running",
        measured=int(raw.get("measured") or 0),
        successes=int(raw.get("successful") or 0),
        failures=int(raw.get("failed") or 0),
        inconclusive=int(raw.get("inconclusive") or 0),
        last_value=float(value) if isinstance(value, (int, float)) else None,
        last_at=datetime.fromisoformat(last_at) if isinstance(last_at, str) and last_at else None,
        last_error=str(raw.get("lastError") or ""),
        dry_run=bool(raw.get("dryRun")),
    )


def runs_from_status(raw: Any) -> tuple[AnalysisRun, ...]:
    items = raw if isinstance(raw, list) else []
    return tuple(run for item in items if (run := AnalysisRun.from_status(item)) is not None)


def with_run(runs: tuple[AnalysisRun, ...], run: AnalysisRun) -> tuple[AnalysisRun, ...]:
    """The runs kept in status: this revision's, one per stage (before and after the switch)."""
    kept = tuple(r for r in runs if r.revision == run.revision and r.stage != run.stage)
    return tuple(sorted((*kept, run), key=lambda r: STAGES.index(r.stage)))


def checks_for(checks: Iterable[MetricCheck], stage: Stage) -> tuple[MetricCheck, ...]:
    return tuple(check for check in checks if stage in check.stages)


def _run_of(runs: tuple[AnalysisRun, ...], stage: Stage, revision: int) -> AnalysisRun | None:
    return next((run for run in runs if run.stage == stage and run.revision == revision), None)


def current_run(
    runs: tuple[AnalysisRun, ...], checks: tuple[MetricCheck, ...], stage: Stage, revision: int, started_at: datetime
) -> AnalysisRun:
    """The stage's run: the recorded one of this stage of this revision, else a new one. A check
    added to the spec mid-run joins it; one removed no longer counts."""
    wanted = checks_for(checks, stage)
    run = _run_of(runs, stage, revision) or AnalysisRun(stage, revision, started_at)
    recorded = {result.name: result for result in run.results}
    results = tuple(replace(recorded.get(c.name, CheckResult(c.name)), dry_run=c.dry_run) for c in wanted)
    return replace(run, results=results)


def due(run: AnalysisRun, checks: tuple[MetricCheck, ...], now: datetime) -> tuple[MetricCheck, ...]:
    """The running checks whose next measurement is due."""
    return tuple(check for check in checks if (moment := _next_at(run, check)) is not None and moment <= now)


def next_due(run: AnalysisRun, checks: tuple[MetricCheck, ...]) -> datetime | None:
    moments = [moment for check in checks if (moment := _next_at(run, check)) is not None]
    return min(moments) if moments else None


def _next_at(run: AnalysisRun, check: MetricCheck) -> datetime | None:
    result = next((r for r in run.results if r.name == check.name), None)
    if result is None or result.phase != "Running":
        return None
    if result.last_at is None:
        return run.started_at + check.initial_delay
    return result.last_at + check.interval


def record(
    run: AnalysisRun, checks: tuple[MetricCheck, ...], measurements: Iterable[Measurement], now: datetime
) -> AnalysisRun:
    """The run with this pass's measurements counted (only a running check's, and only when due:
    a measurement read for a stage that has since moved on is not counted twice)."""
    due_now = {check.name: check for check in due(run, checks, now)}
    taken = {m.name: m for m in measurements if m.name in due_now and m.stage == run.stage}
    return replace(
        run,
        results=tuple(_counted(r, due_now[r.name], taken[r.name], now) if r.name in taken else r for r in run.results),
    )


def _counted(result: CheckResult, check: MetricCheck, measurement: Measurement, now: datetime) -> CheckResult:
    value = measurement.value
    success = value is not None and meets(check.success_condition, value)
    result = replace(
        result,
        measured=result.measured + 1,
        successes=result.successes + (1 if success else 0),
        failures=result.failures + (1 if value is not None and not success else 0),
        inconclusive=result.inconclusive + (1 if value is None else 0),
        last_value=value,
        last_at=now,
        last_error=measurement.error if value is None else "",
    )
    phase: CheckPhase = "Running"
    if result.failures > check.failure_limit:
        phase = "Failed"
    elif result.inconclusive > check.inconclusive_limit:
        phase = "Inconclusive"
    elif result.measured >= check.count:
        phase = "Successful"
    return replace(result, phase=phase)


def finished(before: tuple[AnalysisRun, ...], after: AnalysisRun) -> tuple[CheckResult, ...]:
    """The checks this pass finished (for their Events)."""
    previous = _run_of(before, after.stage, after.revision)
    was = {r.name: r.phase for r in previous.results} if previous else {}
    return tuple(r for r in after.results if r.phase != "Running" and was.get(r.name, "Running") == "Running")


def describe(result: CheckResult, check: MetricCheck | None) -> str:
    """One line a person reads in an Event, a condition or `kubectl ragcorp status`."""
    condition = f" (success: {check.success_condition})" if check else ""
    counts = f"{result.successes} successful, {result.failures} failed, {result.inconclusive} inconclusive"
    last = f"last value {result.last_value:g}" if result.last_value is not None else "no value"
    if result.last_error and result.last_value is None:
        last += f": {result.last_error}"
    return f"{result.name}{condition}: {counts} of {result.measured}; {last}"
