"""What `kubectl ragcorp status` and `get` say about a stage's analysis, from the status the
machine writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ragcorp_operator.kubectl_plugin import format_status
from ragcorp_operator.rollout import RolloutState
from ragcorp_operator.rollout.metric_checks import Measurement, MetricCheck, current_run, record

START = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
CHECKS = (
    MetricCheck("search-p99", "q", "result <= 0.25", interval=timedelta(seconds=30), count=2),
    MetricCheck("no-5xx", "q", "result == 0", dry_run=True),
)


def test_status_lists_each_check_with_its_phase_counts_and_last_value() -> None:
    run = current_run((), CHECKS, "prePromotion", 4, START)
    run = record(
        run,
        CHECKS,
        [Measurement("search-p99", "prePromotion", 0.18), Measurement("no-5xx", "prePromotion", None, "no data")],
        START,
    )
    status = RolloutState(phase="Verifying", revision=4, analysis=(run,)).to_status()
    shown = format_status({"metadata": {"name": "rag"}, "status": status}).splitlines()
    at = shown.index("Analysis:    prePromotion of revision 4")
    p99, errors = shown[at + 1].split(), shown[at + 2]
    assert p99[:2] == ["search-p99", "Running"] and "1 ok, 0 failed" in shown[at + 1] and p99[-1] == "0.18"
    assert errors.split()[:4] == ["no-5xx", "Inconclusive", "(dry", "run)"] and errors.endswith("no data")
