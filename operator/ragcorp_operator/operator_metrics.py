"""The operator's own Prometheus metrics: reconcile counts, durations and errors; each resource's
rollout phase, the time rollouts spend per phase, aborts and rollbacks with their reasons, and
notification deliveries (the Grafana dashboard "RagCorp / Rollouts" draws them).

In a registry of their own (not prometheus_client's global one), held by the operator's runtime:
two operators in one process (tests, an embedded operator) never share counters.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ragcorp_operator.rollout import Event, Phase
from ragcorp_operator.rollout.state import PHASES


@dataclass
class PhaseClock:
    """Where one resource's rollout was last seen, and since when (a reconciler's, in memory: after
    a restart or takeover the phase in progress is not timed, never timed wrong)."""

    phase: Phase | None = None
    since: float | None = None


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "ragcorp_operator_reconciles_total",
            "Reconcile passes, by outcome",
            ["namespace", "name", "outcome"],
            registry=self.registry,
        )
        self.notifications = Counter(
            "ragcorp_operator_notifications_total",
            "Webhook deliveries of spec.notifications, by trigger and outcome (delivered, retried, failed, dropped)",
            ["trigger", "outcome"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "ragcorp_operator_reconcile_duration_seconds",
            "Time spent in one reconcile pass",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.rollout_phase = Gauge(
            "ragcorp_operator_rollout_phase",
            "1 for the phase each RagCorpDeployment's rollout is in, 0 for the others",
            ["namespace", "name", "phase"],
            registry=self.registry,
        )
        self.phase_seconds = Histogram(
            "ragcorp_operator_phase_duration_seconds",
            "Time a rollout spent in a phase, observed when it left it",
            ["phase"],
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200),
            registry=self.registry,
        )
        self.aborts = Counter(
            "ragcorp_operator_aborts_total",
            "Rollouts aborted, by reason (SmokeTestFailed, MetricGateFailed, AnalysisFailed, ManualAbort, ...)",
            ["namespace", "name", "reason"],
            registry=self.registry,
        )
        self.rollbacks = Counter(
            "ragcorp_operator_rollbacks_total",
            "Rollbacks carried out, by how (RolledBack: traffic back at once; RollbackStarted: redeployed)",
            ["namespace", "name", "reason"],
            registry=self.registry,
        )

    def count_event(self, namespace: str, name: str, event: Event) -> None:
        """Aborts and rollbacks are counted from the Events the machine emits: one per trigger."""
        if "aborted" in event.triggers:
            self.aborts.labels(namespace, name, event.reason).inc()
        if "rolledBack" in event.triggers:
            self.rollbacks.labels(namespace, name, event.reason).inc()

    def see_phase(self, namespace: str, name: str, phase: Phase | None, clock: PhaseClock) -> None:
        """The phase after a pass: the gauge follows it, and leaving a phase observes its duration."""
        if phase is None or phase == clock.phase:
            return
        now = time.monotonic()
        if clock.phase is not None and clock.since is not None:
            self.phase_seconds.labels(clock.phase).observe(now - clock.since)
        clock.phase, clock.since = phase, now
        for each in PHASES:
            self.rollout_phase.labels(namespace, name, each).set(1 if each == phase else 0)

    def forget(self, namespace: str, name: str) -> None:
        """A deleted resource's series go with it."""
        for each in PHASES:
            with contextlib.suppress(KeyError):  # never seen in that phase
                self.rollout_phase.remove(namespace, name, each)
