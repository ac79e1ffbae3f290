"""Prometheus and Grafana files: one source of truth, in the shapes their tools load."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ASSETS = Path(str(files("ragcorp_operator") / "assets"))


def test_compose_loads_the_very_rules_and_dashboards_the_operator_renders() -> None:
    assert (ROOT / "infra/prometheus/alerts.yml").resolve() == (ASSETS / "alerts.yml").resolve()
    assert (ROOT / "infra/grafana/dashboards").resolve() == (ASSETS / "dashboards").resolve()


def test_the_four_alerts_with_their_windows_and_severities() -> None:
    groups = yaml.safe_load((ROOT / "infra/prometheus/alerts.yml").read_text())["groups"]
    rules = {rule["alert"]: rule for group in groups for rule in group["rules"]}
    assert {name: (rule["for"], rule["labels"]["severity"]) for name, rule in rules.items()} == {
        "RagCorpHighErrorRate": ("5m", "critical"),
        "RagCorpHighLatency": ("5m", "warning"),
        "RagCorpDatabaseConnectionFailures": ("2m", "critical"),
        "RagCorpHighMemory": ("5m", "warning"),
    }
    assert "> 0.05" in rules["RagCorpHighErrorRate"]["expr"]
    assert "> 2" in rules["RagCorpHighLatency"]["expr"]
    assert "> 0.9" in rules["RagCorpHighMemory"]["expr"]


def test_prometheus_scrapes_the_service_and_loads_the_mounted_rules() -> None:
    config = yaml.safe_load((ROOT / "infra/prometheus/prometheus.yml").read_text())
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["prometheus"]["volumes"])
    assert config["rule_files"] == [mounts["./infra/prometheus/alerts.yml"]]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["ragcorp"]["static_configs"][0]["targets"] == ["backend:8000"]


def test_dashboards_are_grafana_json_with_unique_uids_and_a_datasource_choice() -> None:
    dashboards = [json.loads(path.read_text()) for path in sorted((ROOT / "infra/grafana/dashboards").glob("*.json"))]
    assert [d["title"] for d in dashboards] == [
        "RagCorp / API performance",
        "RagCorp / Operations and SLOs",
        "RagCorp / PostgreSQL",
        "RagCorp / Rollouts",
    ]
    assert len({d["uid"] for d in dashboards}) == 4
    for dashboard in dashboards:
        assert dashboard["templating"]["list"][0]["type"] == "datasource"
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)) and all(panel["targets"] for panel in dashboard["panels"])


def test_grafana_provisioning_points_at_the_mounted_dashboards() -> None:
    provider = yaml.safe_load((ROOT / "infra/grafana/provisioning/dashboards/ragcorp.yml").read_text())
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert provider["providers"][0]["options"]["path"] == mounts["./infra/grafana/dashboards"]
