"""The Helm chart, checked without a helm binary (`make chart-check` adds `helm lint` and
`helm template | kubernetes-validate` where helm is installed).

Values validate against the chart's schema (defaults and the production overrides,
merged as helm merges them), the CRD is the project's own, and every value a
template reads is defined.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "ragcorp-operator"


def values(name: str = "values.yaml") -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / name).read_text())
    return loaded


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """helm's coalescing: maps merge key by key, everything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def schema_errors(candidate: dict[str, Any]) -> list[str]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(candidate)
    ]


def test_default_and_production_values_match_the_schema() -> None:
    assert schema_errors(values()) == []
    assert schema_errors(merged(values(), values("values-production.yaml"))) == []


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"replicaCount": 0}, "replicaCount"),
        ({"image": {"pullPolicy": "Sometimes"}}, "image.pullPolicy"),
        ({"watchNamespaces": ["Not_A_Namespace"]}, "watchNamespaces.0"),
        ({"metrics": {"prot": 9090}}, "metrics"),
    ],
)
def test_the_schema_rejects_bad_values_naming_them(override: dict[str, Any], problem: str) -> None:
    errors = schema_errors(merged(values(), override))
    assert errors and errors[0].startswith(problem)


def test_the_chart_installs_the_projects_own_crd() -> None:
    name = "ragcorpdeployments.ragcorp.dev.yaml"
    assert (CHART / "crds" / name).read_bytes() == (ROOT / "crds" / name).read_bytes(), "run `make crds`"
    shipped = ROOT / "operator" / "ragcorp_operator" / "assets" / "crd.yaml"  # what `kubectl ragcorp lint` reads
    assert shipped.read_bytes() == (ROOT / "crds" / name).read_bytes(), "run `make crds`"


def test_the_chart_installs_kopfs_peering_crds() -> None:
    crds = list(yaml.safe_load_all((CHART / "crds" / "kopf-peering.yaml").read_text()))
    assert {(c["spec"]["names"]["kind"], c["spec"]["scope"]) for c in crds} == {
        ("ClusterKopfPeering", "Cluster"),
        ("KopfPeering", "Namespaced"),
    }


def test_every_value_a_template_reads_is_defined() -> None:
    defaults = values()
    for template in sorted((CHART / "templates").iterdir()):
        for path in re.findall(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", template.read_text()):
            node: Any = defaults
            for key in path.strip(".").split("."):
                assert isinstance(node, dict) and key in node, (
                    f"{template.name} reads .Values{path}, not in values.yaml"
                )
                node = node[key]


def test_chart_version_follows_the_project() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    assert chart["apiVersion"] == "v2" and chart["name"] == "ragcorp-operator"


def test_operator_runs_two_peered_non_root_replicas_by_default() -> None:
    defaults = values()
    assert defaults["replicaCount"] == 2 and defaults["peering"]["enabled"] is True
    assert defaults["podSecurityContext"]["runAsNonRoot"] is True
    assert defaults["securityContext"]["readOnlyRootFilesystem"] is True
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert "--standalone" in deployment and "RAGCORP_PEERING_NAME" in deployment


def test_an_uninstall_releases_the_operators_finalizer_with_an_account_of_its_own() -> None:
    """After `helm uninstall` no operator is left to remove its finalizer: a post-delete hook does,
    once the operator is gone (it would put it back), allowed only what the command calls."""
    from ragcorp_operator.cli import build_parser

    text = (CHART / "templates" / "uninstall-hook.yaml").read_text()
    documents = text.split("\n---\n")
    assert len(documents) == 4 and all("helm.sh/hook: post-delete" in d for d in documents)
    assert all("hook-delete-policy: before-hook-creation,hook-succeeded" in d for d in documents)
    assert "args: [release-finalizers]" in documents[3]
    build_parser().parse_args(["release-finalizers"])  # the command exists
    rules_text = documents[1][documents[1].index("rules:") :]
    assert yaml.safe_load(rules_text)["rules"] == [
        {"apiGroups": ["ragcorp.dev"], "resources": ["ragcorpdeployments"], "verbs": ["list", "get", "patch"]}
    ]
