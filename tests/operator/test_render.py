"""Rendered manifests are valid Kubernetes, carry the contract, and match the service's settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import kubernetes_validate
import pytest
import yaml

from ragcorp_operator.cli import main as operator_cli
from ragcorp_operator.naming import MAX_NAME_LENGTH, Color, image_tag, job_name, name_problem
from ragcorp_operator.plan import SERVICE_MONITOR, children, render_job, render_resource
from ragcorp_operator.render.common import Owner
from ragcorp_operator.render.config import service_settings
from ragcorp_operator.rollout import Intent, JobIntent, JobKind
from ragcorp_operator.spec import SpecError, parse_spec
from ragcorp_service.settings import Settings
from tests.support.crd import crd_schema, crd_validator

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "crds" / "examples").glob("*.yaml"))
#: The Kubernetes versions we claim: the oldest and the newest supported.
KUBERNETES_VERSIONS = ["1.27.0", "1.37.0"]
#: Prometheus Operator kinds have no upstream schema in kubernetes-validate.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}


def example(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_rendered_manifest_passes_the_kubernetes_schema(path: Path, version: str) -> None:
    manifests = render_resource(example(path))
    assert {m["kind"] for m in manifests} >= {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "Job"}
    for manifest in manifests:
        if manifest["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(manifest, version, strict=True)


def test_production_example_renders_autoscaling_without_a_fixed_replica_count() -> None:
    manifests = {
        (m["kind"], m["metadata"]["name"]): m for m in render_resource(example(ROOT / "crds/examples/production.yaml"))
    }
    assert "replicas" not in manifests["Deployment", "ragcorp-blue"]["spec"]
    assert manifests["HorizontalPodAutoscaler", "ragcorp"]["spec"]["minReplicas"] == 3
    assert manifests["Job", "ragcorp-migrate-1"]["spec"]["activeDeadlineSeconds"] == 900


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_pass_the_crd_schema_and_parse(path: Path) -> None:
    resource = example(path)
    crd_validator().validate(resource)
    parse_spec(resource["spec"])


def test_crd_rejects_what_the_parser_rejects() -> None:
    bad = {
        "apiVersion": "ragcorp.dev/v1alpha1",
        "kind": "RagCorpDeployment",
        "metadata": {"name": "x"},
        "spec": {"image": "", "secrets": {}},
    }
    with pytest.raises(jsonschema.ValidationError):
        crd_validator().validate(bad)
    with pytest.raises(SpecError, match=r"spec\.image.*spec\.secrets\.databaseUrl"):
        parse_spec(bad["spec"])


def schema_defaults(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, child in (node.get("properties") or {}).items():
        path = f"{prefix}.{name}" if prefix else name
        if "default" in child and child["default"] != {}:
            found[path] = child["default"]
        found.update(schema_defaults(child, path))
    return found


def test_crd_defaults_and_parser_defaults_agree() -> None:
    spec = crd_schema()["properties"]["spec"]
    parsed = parse_spec({"image": "x", "secrets": {"databaseUrl": {"name": "n", "key": "k"}}})
    dumped = parsed.model_dump(by_alias=True)
    for path, default in schema_defaults(spec).items():
        value: Any = dumped
        for part in path.split("."):
            value = value[part] if isinstance(value, dict) else None
        if value is not None or not path.startswith("rollback"):  # rollback has no default object
            assert value == default, path


def test_every_variable_the_operator_sets_is_read_by_the_service() -> None:
    resource = example(ROOT / "crds/examples/production.yaml")
    spec = parse_spec(resource["spec"])
    variables = set(service_settings(spec))
    deployment = next(m for m in render_resource(resource) if m["kind"] == "Deployment")
    variables |= {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    read_by_service = {name.upper() for name in Settings.model_fields}
    assert variables <= read_by_service, variables - read_by_service
    assert {"DATABASE_URL", "GOOGLE_API_KEY", "API_KEYS", "RATE_LIMIT_RPS", "DB_POOL_MIN_SIZE"} <= variables


def test_a_read_replica_reaches_the_serving_pods_only() -> None:
    resource = example(ROOT / "crds/examples/production.yaml")
    resource["spec"]["secrets"]["databaseReadUrl"] = {"name": "ragcorp-secrets", "key": "DATABASE_READ_URL"}
    assert not list(crd_validator().iter_errors(resource))
    manifests = render_resource(resource)

    def env_of(kind: str) -> set[str]:
        pods = [m["spec"]["template"]["spec"] for m in manifests if m["kind"] == kind]
        assert pods, kind
        return {e["name"] for pod in pods for e in pod["containers"][0]["env"]}

    assert "DATABASE_READ_URL" in env_of("Deployment")
    assert "DATABASE_READ_URL" not in env_of("Job")
    assert "DATABASE_READ_URL" in {name.upper() for name in Settings.model_fields}


def cel_rejections(resource: dict[str, Any]) -> list[str]:
    """The messages of every CRD CEL rule the resource breaks, evaluated as the API server does
    (the root's rules see the whole object, the spec's rules see the spec)."""
    environment = celpy.Environment()
    schema = crd_schema()
    scopes = [(schema, resource), (schema["properties"]["spec"], resource["spec"])]
    broken = []
    for node, value in scopes:
        for rule in node.get("x-kubernetes-validations") or []:
            program = environment.program(environment.compile(rule["rule"]))
            if not program.evaluate({"self": celpy.json_to_cel(value)}):
                broken.append(rule["message"])
    return broken


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_pass_the_crds_cel_rules(path: Path) -> None:
    assert cel_rejections(example(path)) == []


def test_cel_rules_refuse_cross_field_mistakes_and_names_too_long_for_the_children() -> None:
    resource = example(ROOT / "crds/examples/minimal.yaml")
    resource["spec"]["autoscaling"] = {"enabled": True, "minReplicas": 5, "maxReplicas": 2}
    assert cel_rejections(resource) == ["autoscaling.minReplicas must not exceed autoscaling.maxReplicas"]
    longest = "r" * MAX_NAME_LENGTH
    assert len(job_name(longest, "downgrade", 999_999)) == 63
    for name, accepted in [(longest, True), (longest + "x", False), ("Rag", False), ("rag.corp", False)]:
        named = example(ROOT / "crds/examples/minimal.yaml") | {"metadata": {"name": name}}
        rejections = cel_rejections(named)
        assert (rejections == []) is accepted, name
        assert (name_problem(name) is None) is accepted, name
        if not accepted:
            assert (
                f"at most {MAX_NAME_LENGTH} characters" in rejections[0]
                and "<name>-downgrade-<revision>" in rejections[0]
            )


def test_render_cli_prints_the_manifests_offline(capsys: pytest.CaptureFixture[str]) -> None:
    assert operator_cli(["render", "-f", str(ROOT / "crds/examples/minimal.yaml")]) == 0
    kinds = [d["kind"] for d in yaml.safe_load_all(capsys.readouterr().out)]
    assert kinds[:4] == ["ConfigMap", "Service", "Service", "Deployment"] and "Job" in kinds


def test_render_can_leave_out_the_prometheus_operators_objects(capsys: pytest.CaptureFixture[str]) -> None:
    """A cluster without the Prometheus Operator's CRDs cannot apply them (kubectl apply fails on
    the unknown kinds); the operator itself only creates them where the CRDs are installed."""
    production = str(ROOT / "crds/examples/production.yaml")
    assert operator_cli(["render", "-f", production]) == 0
    everything = {d["kind"] for d in yaml.safe_load_all(capsys.readouterr().out)}
    assert operator_cli(["render", "-f", production, "--no-monitoring"]) == 0
    plain = {d["kind"] for d in yaml.safe_load_all(capsys.readouterr().out)}
    assert {"ServiceMonitor", "PrometheusRule"} <= everything and everything - plain == {
        "ServiceMonitor",
        "PrometheusRule",
    }


def test_render_cli_reports_an_invalid_resource(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    resource = {"apiVersion": "ragcorp.dev/v1alpha1", "kind": "RagCorpDeployment", "metadata": {"name": "x"}}
    bad.write_text(yaml.safe_dump({**resource, "spec": {"image": "x", "replicas": -1}}))
    assert operator_cli(["render", "-f", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "spec.replicas" in err and "spec.secrets" in err


def test_dashboards_ship_as_a_configmap_grafanas_sidecar_picks_up() -> None:
    resource = example(ROOT / "crds/examples/production.yaml")
    manifests = {(m["kind"], m["metadata"]["name"]): m for m in render_resource(resource)}
    dashboards = manifests["ConfigMap", "ragcorp-dashboards"]
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert sorted(dashboards["data"]) == sorted(p.name for p in (ROOT / "infra/grafana/dashboards").glob("*.json"))
    resource["spec"]["monitoring"]["dashboards"] = False
    assert ("ConfigMap", "ragcorp-dashboards") not in {
        (m["kind"], m["metadata"]["name"]) for m in render_resource(resource)
    }


def test_the_production_example_s_service_monitor_authenticates_with_its_metrics_key() -> None:
    """The example sets API keys, so /metrics needs one: without metricsKey Prometheus would get 401s."""
    resource = example(ROOT / "crds/examples/production.yaml")
    monitor = next(m for m in render_resource(resource) if m["kind"] == "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "ragcorp-secrets", "key": "METRICS_KEY"},
    }


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize(
    ("deployments", "preview_color"),
    [({"blue": ("img:1", 2)}, "blue"), ({"blue": ("img:1", 2), "green": ("img:2", 1)}, "green")],
    ids=["steady", "verifying-green"],
)
def test_prometheus_scrapes_every_api_pod_exactly_once(deployments: dict[Color, Any], preview_color: Color) -> None:
    spec = parse_spec(example(ROOT / "crds/examples/production.yaml")["spec"])
    intent = Intent(deployments=deployments, active_service_color="blue", preview_service_color=preview_color)
    manifests = children(Owner("rag", "prod"), spec, intent, frozenset({SERVICE_MONITOR})).apply
    monitor = next(m for m in manifests if m["kind"] == "ServiceMonitor")
    scraped = [
        m
        for m in manifests
        if m["kind"] == "Service" and _matches(monitor["spec"]["selector"]["matchLabels"], m["metadata"]["labels"])
    ]
    for pod_labels in (m["spec"]["template"]["metadata"]["labels"] for m in manifests if m["kind"] == "Deployment"):
        assert sum(_matches(s["spec"]["selector"], pod_labels) for s in scraped) == 1, pod_labels
    # While green is verified, its series carry the preview Service's name: what the metric gate queries.
    assert {s["metadata"]["name"] for s in scraped} == ({"rag", "rag-preview"} if preview_color == "green" else {"rag"})


@pytest.mark.parametrize("service_type", ["LoadBalancer", "NodePort", "ClusterIP"])
def test_the_preview_service_is_cluster_internal_whatever_the_active_one_is(service_type: str) -> None:
    """The preview selects the colour not yet verified: never exposed outside the cluster."""
    resource = example(ROOT / "crds/examples/minimal.yaml")
    resource["spec"].setdefault("service", {})["type"] = service_type
    services = {m["metadata"]["name"]: m["spec"]["type"] for m in render_resource(resource) if m["kind"] == "Service"}
    name = resource["metadata"]["name"]
    assert services == {name: service_type, f"{name}-preview": "ClusterIP"}


@pytest.mark.parametrize(
    ("image", "label"),
    [
        ("registry.example/ragcorp:1.2.3", "1.2.3"),
        ("ragcorp", "latest"),
        # 62 characters, then a dot the 63-character cut would leave at the end of the label
        (f"ragcorp:{'a' * 62}.b", "a" * 62),
        ("ragcorp@sha256:" + "0" * 64, ("sha256-" + "0" * 64)[:63]),
    ],
)
def test_the_version_label_is_a_valid_label_value(image: str, label: str) -> None:
    assert image_tag(image) == label
    assert re.fullmatch(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?", label)


def test_services_are_written_before_the_deployments_they_leave() -> None:
    """In the pass that moves traffic, the Services' new selectors reach the API first."""
    spec = parse_spec(example(ROOT / "crds/examples/production.yaml")["spec"])
    deployments: dict[Color, Any] = {"blue": ("img:1", 0), "green": ("img:2", 3)}
    intent = Intent(deployments=deployments, active_service_color="green", preview_service_color="green")
    kinds = [m["kind"] for m in children(Owner("rag", "prod"), spec, intent, frozenset()).apply]
    assert max(i for i, k in enumerate(kinds) if k == "Service") < min(
        i for i, k in enumerate(kinds) if k == "Deployment"
    )


@pytest.mark.parametrize("kind", ["migrate", "downgrade", "smoke"])
def test_a_node_drain_is_not_a_failed_job_and_a_failed_migration_is_not_retried(kind: JobKind) -> None:
    spec = parse_spec(example(ROOT / "crds/examples/production.yaml")["spec"])
    job = render_job(Owner("rag", "prod"), spec, JobIntent(kind, 3, "img:3", "0002"))["spec"]
    assert job["podFailurePolicy"]["rules"] == [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    ]
    assert job["backoffLimit"] == 0 and job["template"]["spec"]["restartPolicy"] == "Never"


def test_an_autoscaled_active_deployment_created_again_starts_at_its_size_not_at_one() -> None:
    """The HPA owns `replicas` of the active colour, so they are left out, except when the
    Deployment is being created: the API server would start it at 1 while it takes all the traffic."""
    spec = parse_spec(example(ROOT / "crds/examples/production.yaml")["spec"])
    deployments: dict[Color, Any] = {"blue": ("img:1", 3)}
    intent = Intent(deployments=deployments, active_service_color="blue", preview_service_color="blue")

    def blue_replicas(existing: frozenset[Color]) -> object:
        plan = children(Owner("rag", "prod"), spec, intent, frozenset(), existing)
        blue = next(m for m in plan.apply if m["kind"] == "Deployment")
        return blue["spec"].get("replicas")

    assert blue_replicas(frozenset({"blue"})) is None  # the HPA's to set
    assert blue_replicas(frozenset()) == 3


def test_render_of_a_resource_with_a_status_shows_the_state_it_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`kubectl get rcd ragcorp -o yaml | ragcorp-operator render -f -` mid-rollout: both colours,
    the phase's Job and the preview on the new colour, as the operator applies them now."""
    from ragcorp_operator.rollout import RolloutState

    resource = example(ROOT / "crds/examples/minimal.yaml")
    old, new = resource["spec"]["image"], resource["spec"]["image"] + "-2"
    resource["spec"]["image"] = new
    resource["status"] = RolloutState(
        phase="Verifying",
        revision=2,
        active_color="blue",
        active_image=old,
        target_color="green",
        target_image=new,
        schema_revision="0005",
    ).to_status()
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(resource))
    assert operator_cli(["render", "-f", str(path)]) == 0
    manifests = {(m["kind"], m["metadata"]["name"]): m for m in yaml.safe_load_all(capsys.readouterr().out)}
    images = {
        name: m["spec"]["template"]["spec"]["containers"][0]["image"]
        for (kind, name), m in manifests.items()
        if kind == "Deployment"
    }
    assert images == {"ragcorp-blue": old, "ragcorp-green": new}
    assert ("Job", "ragcorp-smoke-2") in manifests and ("Job", "ragcorp-migrate-1") not in manifests
    assert manifests["Service", "ragcorp-preview"]["spec"]["selector"]["ragcorp.dev/color"] == "green"
    assert manifests["Service", "ragcorp"]["spec"]["selector"]["ragcorp.dev/color"] == "blue"


def test_no_pod_mounts_a_service_account_token_and_jobs_name_their_container_after_their_kind() -> None:
    """Nothing the operator runs calls the Kubernetes API. A colour still running a template with
    the token (`mounts_token`) renders as it runs, so an operator upgrade restarts none of it."""
    resource = example(ROOT / "crds/examples/production.yaml")
    manifests = render_resource(resource)
    pods = {
        (m["kind"], m["metadata"]["name"]): m["spec"]["template"]["spec"]
        for m in manifests
        if m["kind"] in ("Deployment", "Job")
    }
    assert pods and all(pod["automountServiceAccountToken"] is False for pod in pods.values())
    assert pods["Job", "ragcorp-migrate-1"]["containers"][0]["name"] == "migrate"
    assert pods["Deployment", "ragcorp-blue"]["containers"][0]["name"] == "api"
    spec = parse_spec(resource["spec"])
    owner = Owner("ragcorp", "default", "")
    intent = Intent({"blue": ("app:1", 2)}, "blue", "blue", token_mounted=frozenset({"blue"}))
    [legacy] = [m for m in children(owner, spec, intent, frozenset()).apply if m["kind"] == "Deployment"]
    assert "automountServiceAccountToken" not in legacy["spec"]["template"]["spec"]
