"""Every metric an alert rule or a dashboard queries is one the service (or the operator) exports.

The names come from parsing each PromQL expression, and the exported names from a
real scrape of the app's /metrics, so renaming a metric without its rules fails here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import httpx
import promql_parser
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from ragcorp_operator.operator_metrics import OperatorMetrics
from ragcorp_operator.render.monitoring import alert_rules, dashboards
from ragcorp_service.api.service_metrics import memory_limit_bytes

#: Series Prometheus makes itself, and the ones postgres-exporter serves for the PostgreSQL dashboard.
PROMETHEUS_OWN = {"ALERTS", "up"}
POSTGRES_EXPORTER_PREFIX = "pg_"
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def series_names(families: Iterable[Metric]) -> set[str]:
    """Series names a family exposes, samples or not (a labelled counter has none until used)."""
    names = set()
    for family in families:
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in HISTOGRAM_SUFFIXES)
        else:
            names.add(family.name)
    return names


def operator_exported() -> set[str]:
    return series_names(OperatorMetrics().registry.collect())


def dashboard_expressions() -> dict[str, str]:
    found = {}
    for file, text in dashboards().items():
        for panel in json.loads(text)["panels"]:
            for target in panel["targets"]:
                found[f"{file}: {panel['title']}"] = target["expr"]
    return found


async def test_alert_rules_and_dashboards_query_only_exported_metrics(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")  # so the request counters have samples
    scrape = await client.get("/metrics")
    known = series_names(text_string_to_metric_families(scrape.text)) | operator_exported() | PROMETHEUS_OWN
    expressions = {rule["alert"]: rule["expr"] for group in alert_rules()["groups"] for rule in group["rules"]}
    expressions |= dashboard_expressions()
    unknown = {
        where: names
        for where, expr in expressions.items()
        if (names := sorted(n for n in metric_names(expr) - known if not n.startswith(POSTGRES_EXPORTER_PREFIX)))
    }
    assert unknown == {}


def test_the_check_itself_sees_names_inside_functions_and_operators() -> None:
    expr = 'max(process_resident_memory_bytes / ragcorp_memory_limit_bytes) > 0.9 and on() rate(x_total{a="b"}[5m])'
    assert metric_names(expr) == {"process_resident_memory_bytes", "ragcorp_memory_limit_bytes", "x_total"}


def test_memory_limit_comes_from_the_cgroup_and_is_infinite_without_one(tmp_path: Path) -> None:
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    assert memory_limit_bytes((v2, v1)) == math.inf  # neither file
    v1.write_text("9223372036854771712\n")  # cgroup v1's "unlimited"
    assert memory_limit_bytes((v2, v1)) == math.inf
    v2.write_text("max\n")
    assert memory_limit_bytes((v2, v1)) == math.inf
    v2.write_text("536870912\n")
    assert memory_limit_bytes((v2, v1)) == 536870912.0
