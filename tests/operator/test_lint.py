"""`kubectl ragcorp lint -f FILE`: what the API server and the operator would refuse, found
offline, before `kubectl apply`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ragcorp_operator.kubectl_plugin import main
from ragcorp_operator.lint import lint_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "crds" / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_the_shipped_examples_pass(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "-f", str(path)]) == 0
    assert "ok" in capsys.readouterr().out


def minimal(**spec: object) -> dict[str, object]:
    resource = yaml.safe_load((ROOT / "crds" / "examples" / "minimal.yaml").read_text())
    resource["spec"].update(spec)
    return resource


def test_what_the_crd_schema_refuses_is_named_by_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = minimal(replicas=-1, strategy={"blueGreen": {"analysis": {"metrics": [{"name": "p99", "query": "x"}]}}})
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ragcorp-database"}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump_all([secret, bad]))
    assert main(["lint", "-f", str(path)]) == 1
    out = capsys.readouterr().out
    assert "document 1 (Secret ragcorp-database): skipped" in out
    assert "spec.replicas: -1 is less than the minimum of 0" in out
    assert "spec.strategy.blueGreen.analysis.metrics.0: 'successCondition' is a required property" in out


def test_what_only_the_operator_refuses_is_found_too() -> None:
    """The CRD's CEL rules and the operator's own checks (names given twice, an env variable it
    sets itself) pass the OpenAPI schema; `parse_spec` is what refuses them."""
    resource = minimal(
        autoscaling={"enabled": True, "minReplicas": 5, "maxReplicas": 2},
        env=[{"name": "DATABASE_URL", "value": "postgresql://elsewhere"}],
    )
    [finding] = lint_text(yaml.safe_dump(resource))
    assert any("minReplicas must not exceed" in problem for problem in finding.problems), finding
    assert any(problem.startswith("spec.env.0") and "DATABASE_URL" in problem for problem in finding.problems)


def test_a_name_the_operator_cannot_derive_children_from_and_a_file_that_is_not_yaml(tmp_path: Path) -> None:
    resource = minimal()
    resource["metadata"]["name"] = "RagCorp"
    [finding] = lint_text(yaml.safe_dump(resource))
    assert finding.problems and finding.problems[0].startswith("metadata.name: metadata.name must be at most 46")
    [broken] = lint_text("spec: [unclosed")
    assert broken.problems[0].startswith("not YAML")
    assert main(["lint", "-f", str(tmp_path / "missing.yaml")]) == 1
