"""A team's analysis checks, measured and counted (pure: Argo Rollouts' AnalysisRun rules)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ragcorp_operator.rollout.metric_checks import (
    AnalysisRun,
    Measurement,
    MetricCheck,
    current_run,
    due,
    meets,
    next_due,
    record,
)
from ragcorp_operator.spec import SpecError, parse_spec

START = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
P99 = MetricCheck("p99", "histogram_quantile(0.99, ...)", "result <= 0.5", interval=timedelta(seconds=30), count=3)


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        ("result <= 0.5", 0.5, True),
        ("result <= 0.5", 0.51, False),
        ("result < 1e-3", 0.0005, True),
        ("result > 0", 0.0, False),
        ("result >= -2", -2.0, True),
        (" result == 1 ", 1.0, True),
        ("result != 1", 1.0, False),
    ],
)
def test_a_success_condition_compares_the_value(condition: str, value: float, expected: bool) -> None:
    assert meets(condition, value) is expected


def test_a_condition_that_is_not_result_op_number_is_a_spec_error() -> None:
    metric = {"name": "p99", "query": "vector(1)", "successCondition": "result[0] <= 0.5"}
    spec = {"image": "i", "secrets": {"databaseUrl": {"name": "db", "key": "url"}}}
    with pytest.raises(SpecError, match="successCondition"):
        parse_spec({**spec, "strategy": {"blueGreen": {"analysis": {"metrics": [metric]}}}})
    twice = {"analysis": {"metrics": [{**metric, "successCondition": "result < 1"}] * 2}}
    with pytest.raises(SpecError, match="p99 given more than once"):
        parse_spec({**spec, "strategy": {"blueGreen": twice}})


def measured(run: AnalysisRun, values: list[float | None], check: MetricCheck = P99) -> AnalysisRun:
    """`values` measured one interval apart, from the run's start."""
    for step, value in enumerate(values):
        run = record(run, (check,), [Measurement(check.name, "prePromotion", value)], START + step * check.interval)
    return run


def fresh(check: MetricCheck = P99) -> AnalysisRun:
    return current_run((), (check,), "prePromotion", 2, START)


def test_a_check_succeeds_after_count_measurements() -> None:
    run = measured(fresh(), [0.2, 0.3])
    assert run.results[0].phase == "Running" and run.results[0].successes == 2
    run = measured(run, [0.1])  # recorded at START again: not due, not counted
    assert run.results[0].measured == 2
    done = record(run, (P99,), [Measurement("p99", "prePromotion", 0.4)], START + 2 * P99.interval)
    assert (done.results[0].phase, done.results[0].measured, done.results[0].last_value) == ("Successful", 3, 0.4)
    assert next_due(done, (P99,)) is None, "a finished check is not measured again"


def test_failures_past_the_limit_fail_the_check() -> None:
    tolerant = replace(P99, failure_limit=1)
    assert measured(fresh(tolerant), [0.9, 0.2], tolerant).results[0].phase == "Running"
    failed = measured(fresh(tolerant), [0.9, 0.2, 0.8], tolerant).results[0]
    assert (failed.phase, failed.failures, failed.successes) == ("Failed", 2, 1)
    assert measured(fresh(), [0.9]).results[0].phase == "Failed", "failureLimit 0: the first failure fails"


def test_no_value_is_inconclusive_never_a_success() -> None:
    patient = replace(P99, inconclusive_limit=1)
    run = fresh(patient)
    run = record(run, (patient,), [Measurement("p99", "prePromotion", None, "no data")], START)
    assert run.results[0].phase == "Running" and run.results[0].last_error == "no data"
    run = record(run, (patient,), [Measurement("p99", "prePromotion", None, "no data")], START + patient.interval)
    assert run.results[0].phase == "Inconclusive" and run.results[0].successes == 0


def test_measurements_wait_for_the_initial_delay_then_the_interval() -> None:
    delayed = replace(P99, initial_delay=timedelta(seconds=45))
    run = fresh(delayed)
    assert due(run, (delayed,), START + timedelta(seconds=44)) == ()
    assert due(run, (delayed,), START + timedelta(seconds=45)) == (delayed,)
    run = record(run, (delayed,), [Measurement("p99", "prePromotion", 0.1)], START + timedelta(seconds=45))
    assert next_due(run, (delayed,)) == START + timedelta(seconds=75)


def test_a_new_revision_or_stage_starts_a_new_run_and_the_record_survives_status() -> None:
    run = measured(fresh(), [0.2])
    assert AnalysisRun.from_status(run.to_status()) == run
    assert current_run((run,), (P99,), "prePromotion", 2, START).results == run.results
    assert current_run((run,), (P99,), "prePromotion", 3, START).results[0].measured == 0
    assert current_run((run,), (P99,), "postPromotion", 2, START).results[0].measured == 0
    pre_only = replace(P99, name="errors", stages=frozenset({"prePromotion"}))
    post = current_run((run,), (P99, pre_only), "postPromotion", 2, START)
    assert [r.name for r in post.results] == ["p99"], "a prePromotion-only check does not run after the switch"
