"""The service's Prometheus metrics, on a registry of the app's own.

Names follow Prometheus conventions (`_total` counters, `_seconds` histograms,
base units) so the alert rules shipped with the operator can be written
against them: error rate from `ragcorp_http_requests_total{status=~"5.."}`,
p95 from `ragcorp_http_request_duration_seconds_bucket`, and database
trouble from `ragcorp_db_connection_errors_total`, memory pressure from
`process_resident_memory_bytes / ragcorp_memory_limit_bytes` (the limit is
read from the container's cgroup, so the ratio means the same thing under
Compose and in a Pod without cAdvisor's metrics).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import Scope

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
#: cgroup v2, then v1: where a container's memory limit can be read.
CGROUP_MEMORY_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
#: cgroup v1 writes "no limit" as a page-rounded 2**63.
_UNLIMITED = 2**60


def memory_limit_bytes(candidates: tuple[Path, ...] = CGROUP_MEMORY_LIMITS) -> float:
    """The container's memory limit; +Inf when there is none, so a usage ratio is 0, not absent."""
    for path in candidates:
        try:
            raw = path.read_text().strip()
        except OSError:
            continue
        if raw == "max" or not raw.isdigit() or int(raw) >= _UNLIMITED:
            return math.inf
        return float(raw)
    return math.inf


class PoolCollector(Collector):
    """Pool size and connections in use, read at scrape time."""

    def __init__(self, sizes: Callable[[], tuple[int, int] | None]) -> None:
        self._sizes = sizes

    def collect(self) -> Iterator[GaugeMetricFamily]:
        sizes = self._sizes()
        if sizes is None:
            return
        size, idle = sizes
        yield GaugeMetricFamily("ragcorp_db_pool_connections", "Open connections in the pool", value=size)
        yield GaugeMetricFamily("ragcorp_db_pool_connections_in_use", "Connections checked out", value=size - idle)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "ragcorp_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "ragcorp_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("ragcorp_http_requests_in_flight", "HTTP requests being served", registry=r)
        self.rate_limited = Counter(
            "ragcorp_rate_limited_total", "Requests rejected by the rate limiter", ["route"], registry=r
        )
        self.auth_failures = Counter(
            "ragcorp_auth_failures_total", "Requests refused for a missing or invalid API key", registry=r
        )
        self.db_connection_errors = Counter(
            "ragcorp_db_connection_errors_total", "Requests that found the database unreachable", registry=r
        )
        self.provider_seconds = Histogram(
            "ragcorp_provider_duration_seconds",
            "Embedding and generation latency",
            ["operation", "provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.provider_errors = Counter(
            "ragcorp_provider_errors_total", "Embedding and generation failures", ["operation", "provider"], registry=r
        )
        self.documents = Gauge("ragcorp_documents", "Documents stored", registry=r)
        self.chunks = Gauge("ragcorp_chunks", "Chunks stored", registry=r)
        ProcessCollector(registry=r)  # process_resident_memory_bytes, process_cpu_seconds_total, ...
        memory_limit = Gauge(
            "ragcorp_memory_limit_bytes", "The container's memory limit (+Inf when unlimited)", registry=r
        )
        memory_limit.set_function(memory_limit_bytes)

    def watch_pool(self, sizes: Callable[[], tuple[int, int] | None]) -> None:
        self.registry.register(PoolCollector(sizes))


#: HTTP methods that get their own label value; any other is "other". A label taken from the
#: request as sent lets anyone, without a key, mint series: 2,000 random methods once made 36,000.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_of(scope: Scope) -> str:
    method = str(scope.get("method", ""))
    return method if method in KNOWN_METHODS else "other"


def route_of(scope: Scope) -> str:
    """The route template (`/v1/documents/{document_id}`), so metrics stay low-cardinality."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
