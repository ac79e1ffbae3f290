"""What platform teams set on the Pods and Services besides the service's own settings:
extra environment, image pull secrets, Pod annotations, topology spread, Service annotations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ragcorp_operator.plan import render_resource
from ragcorp_operator.pod_config import POD_FIELDS, pod_config, spec_hash, with_pod_config
from ragcorp_operator.render.config import api_keys_env, service_settings, serving_env
from ragcorp_operator.spec import OPERATOR_ENV, SpecError, parse_spec

ROOT = Path(__file__).resolve().parents[2]
MINIMAL: dict[str, Any] = yaml.safe_load((ROOT / "crds" / "examples" / "minimal.yaml").read_text())
PRODUCTION: dict[str, Any] = yaml.safe_load((ROOT / "crds" / "examples" / "production.yaml").read_text())


def _rendered(resource: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [m for m in render_resource(resource) if m["kind"] == kind]


def test_the_production_example_reaches_every_pod_and_service() -> None:
    [deployment] = _rendered(PRODUCTION, "Deployment")
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert {"name": "FORWARDED_ALLOW_IPS", "value": "10.0.0.0/8"} in container["env"]
    assert pod["metadata"]["annotations"] == {"cluster-autoscaler.kubernetes.io/safe-to-evict": "true"}
    assert pod["spec"]["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    for job in _rendered(PRODUCTION, "Job"):  # a migration behind a proxy needs its environment too
        job_pod = job["spec"]["template"]
        assert {"name": "MAX_REQUEST_BYTES", "value": "52428800"} in job_pod["spec"]["containers"][0]["env"]
        assert "annotations" not in job_pod.get("metadata", {}), "sidecar annotations would keep a Job running"
    for service in _rendered(PRODUCTION, "Service"):
        assert service["metadata"]["annotations"] == {"prometheus.io/scrape": "false"}


def test_image_pull_secrets_reach_every_pod() -> None:
    resource = {**MINIMAL, "spec": {**MINIMAL["spec"], "imagePullSecrets": [{"name": "registry"}]}}
    pods = [m["spec"]["template"]["spec"] for m in render_resource(resource) if m["kind"] in ("Deployment", "Job")]
    assert pods and all(pod["imagePullSecrets"] == [{"name": "registry"}] for pod in pods)


def test_an_operator_upgrade_with_these_fields_starts_no_rollout() -> None:
    """Unset, they are not part of the pod config: the hash of a spec written before is unchanged."""
    unset_since_then = {"env", "imagePullSecrets", "podAnnotations"}
    assert not unset_since_then & set(pod_config(parse_spec(MINIMAL["spec"])))
    changed = parse_spec({**MINIMAL["spec"], "env": [{"name": "MAX_TOP_K", "value": "50"}]})
    assert spec_hash(changed) != spec_hash(parse_spec(MINIMAL["spec"])), "a change is a new revision"


def test_a_colour_rolled_out_before_the_env_was_added_renders_without_it() -> None:
    before = pod_config(parse_spec(MINIMAL["spec"]))
    now = parse_spec({**MINIMAL["spec"], "env": [{"name": "MAX_TOP_K", "value": "50"}], "podAnnotations": {"a": "b"}})
    previous = with_pod_config(now, before)
    assert previous.env is None and previous.pod_annotations is None and set(POD_FIELDS) >= set(before)


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ([{"name": "DATABASE_URL", "value": "postgresql://elsewhere"}], "DATABASE_URL is set by the operator"),
        ([{"name": "A", "value": "1"}, {"name": "A", "value": "2"}], "A given more than once"),
        ([{"name": "A", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}], "not both"),
        ([{"name": "1A", "value": "1"}], "spec.env.0.name"),
    ],
    ids=["operators", "twice", "value-and-from", "bad-name"],
)
def test_environment_the_operator_cannot_honour_is_refused_by_name(env: list[dict[str, Any]], problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        parse_spec({**MINIMAL["spec"], "env": env})


def test_the_reserved_names_are_exactly_what_the_operator_sets() -> None:
    """Held to the rendering: a variable the operator sets but does not reserve would be overridden."""
    full = parse_spec(
        {
            **PRODUCTION["spec"],
            "config": {**PRODUCTION["spec"]["config"], "embeddingModel": "text-embedding-004"},
            "secrets": {
                **PRODUCTION["spec"]["secrets"],
                "databaseReadUrl": {"name": "ragcorp-secrets", "key": "DATABASE_READ_URL"},
            },
        }
    )
    anonymous = parse_spec({**MINIMAL["spec"]})
    set_names = set(service_settings(full)) | set(service_settings(anonymous))
    set_names |= {variable["name"] for variable in serving_env(full) + api_keys_env(full)}
    assert set_names == OPERATOR_ENV
