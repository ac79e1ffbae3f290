"""The chart as the real Helm renders it (built with the control plane): a namespace-scoped
install grants the operator its rules only in the namespaces it watches."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from tests.e2e.cluster.binaries import build

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "ragcorp-operator"
WORKLOADS_AND_SECRETS = {"secrets", "deployments", "jobs", "configmaps", "services"}


def rendered(*flags: str) -> list[dict[str, Any]]:
    helm = build(log=False).directory / "helm"
    out = subprocess.run(
        [str(helm), "template", "rag", str(CHART), "--namespace", "ops", *flags],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    documents = [d for d in yaml.safe_load_all(out) if d]
    for document in documents:
        if document["apiVersion"].startswith("rbac."):
            kubernetes_validate.validate(document, "1.37.0", strict=True)
    return documents


def cluster_wide_grants(documents: list[dict[str, Any]]) -> set[str]:
    """Resources the ServiceAccount may touch in every namespace: ClusterRoles bound by a ClusterRoleBinding."""
    roles = {d["metadata"]["name"]: d for d in documents if d["kind"] == "ClusterRole"}
    bound = [d["roleRef"]["name"] for d in documents if d["kind"] == "ClusterRoleBinding"]
    operator_bound = [name for name in bound if not name.endswith("-uninstall")]  # the post-delete hook's own
    return {resource for name in operator_bound for rule in roles[name]["rules"] for resource in rule["resources"]}


def test_a_namespace_scoped_install_grants_its_rules_only_in_the_watched_namespaces() -> None:
    documents = rendered("--set", "watchNamespaces={team-a,team-b}")
    bindings = [d for d in documents if d["kind"] == "RoleBinding"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    assert {b["roleRef"]["name"] for b in bindings} == {"rag-ragcorp-operator"}
    assert all(b["subjects"][0]["namespace"] == "ops" for b in bindings)
    assert not WORKLOADS_AND_SECRETS & cluster_wide_grants(documents)
    assert cluster_wide_grants(documents) == {"customresourcedefinitions", "namespaces"}


def test_by_default_the_operator_watches_every_namespace_with_one_binding() -> None:
    documents = rendered()
    assert not [d for d in documents if d["kind"] == "RoleBinding"]
    assert {"secrets", "deployments", "jobs"} <= cluster_wide_grants(documents)
