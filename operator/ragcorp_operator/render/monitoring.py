"""Prometheus Operator objects, rendered only where their CRDs exist in the cluster."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

import yaml

from ragcorp_operator.naming import INSTANCE_LABEL
from ragcorp_operator.render.common import Manifest, Owner, metadata


@cache
def alert_rules() -> dict[str, Any]:
    """The alerting rules shipped with the operator (one file, also loadable by Prometheus)."""
    loaded: dict[str, Any] = yaml.safe_load((files("ragcorp_operator") / "assets" / "alerts.yml").read_text())
    return loaded


def service_monitor(owner: Owner) -> Manifest:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(owner, owner.name, component="monitoring"),
        "spec": {
            "selector": {"matchLabels": {INSTANCE_LABEL: owner.name, "app.kubernetes.io/component": "api"}},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}],
        },
    }


def prometheus_rule(owner: Owner) -> Manifest:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(owner, owner.name, component="monitoring"),
        "spec": alert_rules(),
    }
