"""The metric gate's verdict, the same before the switch (on the preview) and after it (on the
active Service): wait for the window, then pass, fail, or wait for data until the deadline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from ragcorp_operator.rollout.inputs import GateResult, RolloutPolicy


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
