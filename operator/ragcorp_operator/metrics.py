"""The operator's own Prometheus metrics: reconcile counts, durations and errors."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RECONCILES = Counter(
    "ragcorp_operator_reconciles_total", "Reconcile passes, by outcome", ["namespace", "name", "outcome"]
)
RECONCILE_SECONDS = Histogram(
    "ragcorp_operator_reconcile_duration_seconds",
    "Time spent in one reconcile pass",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
