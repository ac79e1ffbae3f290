"""The operator's own Prometheus metrics: reconcile counts, durations and errors.

In a registry of their own (not prometheus_client's global one), held by the operator's runtime:
two operators in one process (tests, an embedded operator) never share counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


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
