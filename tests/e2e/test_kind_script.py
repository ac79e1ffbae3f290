"""`make e2e-kind` cannot run here (no Docker engine); what can be checked without one is."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import kubernetes_validate
import yaml

from ragcorp_operator.plan import render_resource
from tests.support.crd import crd_validator

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "kind.sh"


def test_the_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_without_docker_it_skips_saying_why() -> None:
    env = {**os.environ, "DOCKER": "/nonexistent/docker"}
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0
    assert "e2e-kind: SKIPPED: docker is not installed" in result.stderr


def test_its_manifests_are_valid() -> None:
    resource = yaml.safe_load((HERE / "ragcorp.yaml").read_text())
    crd_validator().validate(resource)
    assert {m["kind"] for m in render_resource({**resource, "metadata": {**resource["metadata"], "namespace": "e2e"}})}
    for manifest in yaml.safe_load_all((HERE / "postgres.yaml").read_text()):
        kubernetes_validate.validate(manifest, "1.30.0", strict=True)


def test_the_chart_takes_the_values_it_installs_with() -> None:
    """Real Helm renders the chart with the script's `--set`s: the values schema refuses unknown keys
    (the script once passed one the chart had dropped, and could not install at all)."""
    import re
    import shutil

    import pytest

    from tests.e2e.cluster.binaries import build

    if shutil.which("go") is None and not os.environ.get("CI"):
        pytest.skip("real Helm is built from source with Go 1.26")
    install = SCRIPT.read_text().split("helm install", 1)[1].split("--wait", 1)[0]
    values = [argument for pair in re.findall(r"--set (\S+)", install) for argument in ("--set", pair)]
    assert values, "the script sets the operator's image"
    chart = HERE.parents[1] / "charts" / "ragcorp-operator"
    rendered = subprocess.run(
        [build()["helm"], "template", "ragcorp-operator", str(chart), *values],
        capture_output=True,
        text=True,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert 'image: "ragcorp-operator:e2e"' in rendered.stdout
