"""Monitoring children: the ServiceMonitor and PrometheusRule (only where the Prometheus
Operator's CRDs exist) and the Grafana dashboards ConfigMap.

Rules and dashboards are the files shipped in this package (`assets/`), the same
files Compose's Prometheus and Grafana load from `infra/`, so a change to one is a
change to both.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

from ragcorp_operator.naming import INSTANCE_LABEL, SCRAPE_LABEL, dashboards_name
from ragcorp_operator.render.common import Manifest, Owner, metadata
from ragcorp_operator.spec import RagSpec

#: The label Grafana's dashboard sidecar (kube-prometheus-stack, grafana chart) watches for.
GRAFANA_DASHBOARD_LABEL = "grafana_dashboard"


@cache
def alert_rules() -> dict[str, Any]:
    """The alerting rules shipped with the operator (one file, also loadable by Prometheus)."""
    loaded: dict[str, Any] = yaml.safe_load((files("ragcorp_operator") / "assets" / "alerts.yml").read_text())
    return loaded


@cache
def dashboards() -> dict[str, str]:
    """Grafana dashboards by file name, as shipped (checked to be JSON when first read)."""
    folder = files("ragcorp_operator") / "assets" / "dashboards"
    found = {entry.name: entry.read_text() for entry in folder.iterdir() if entry.name.endswith(".json")}
    for text in found.values():
        json.loads(text)
    return dict(sorted(found.items()))


def dashboards_config_map(owner: Owner) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(owner, dashboards_name(owner.name), "monitoring", {GRAFANA_DASHBOARD_LABEL: "1"}),
        "data": dashboards(),
    }


def service_monitor(owner: Owner, spec: RagSpec) -> Manifest:
    endpoint: Manifest = {"port": "http", "path": "/metrics", "interval": "30s"}
    key = spec.monitoring.metrics_key
    if key is not None:
        endpoint["authorization"] = {"type": "Bearer", "credentials": {"name": key.name, "key": key.key}}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(owner, owner.name, component="monitoring"),
        "spec": {
            "selector": {
                "matchLabels": {INSTANCE_LABEL: owner.name, "app.kubernetes.io/component": "api", SCRAPE_LABEL: "true"}
            },
            "endpoints": [endpoint],
        },
    }


def prometheus_rule(owner: Owner, spec: RagSpec) -> Manifest:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(owner, owner.name, component="monitoring"),
        "spec": alert_rules(),
    }
