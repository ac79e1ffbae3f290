"""`make bench` is not part of `make test`; its operator section drives a real operator process
through a rollout, so it runs here once with a short idle window: a change the bench's cluster
stand-in no longer matches (a child renamed, say) fails here, not in the next benchmark run."""

from __future__ import annotations

from bench import operator_load


def test_the_operator_benchmark_completes_a_rollout_and_reports_its_figures() -> None:
    figures = operator_load.rollout_timings(idle_seconds=1.0)
    assert figures["apply_to_children_s"] <= figures["apply_to_ready_s"]
    assert figures["steady_pass_requests"] >= 0 and figures["idle_window_s"] == 1.0
