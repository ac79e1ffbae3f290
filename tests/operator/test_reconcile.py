"""A RagCorpDeployment becomes a complete, running deployment, and stays one."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ragcorp_operator.operator_settings import FINALIZER
from tests.support.operator_cluster import (
    NAMESPACE,
    SPEC,
    ClusterHelper,
    deploy,
    migrate_deploy_and_smoke,
    roll_to_v2,
    running_operator,
    secrets,
)
from tests.support.servers import free_port
from tests.support.waiting import eventually


def test_create_makes_every_child_with_owner_labels_probes_and_env(helper: ClusterHelper, operator: object) -> None:
    secrets(helper)
    deploy(helper)
    resource = helper.resource("rag")
    assert resource is not None
    uid = resource["metadata"]["uid"]
    for kind, name in [
        ("Deployment", "rag-blue"),
        ("Service", "rag"),
        ("Service", "rag-preview"),
        ("PodDisruptionBudget", "rag"),
        ("Job", "rag-migrate-1"),
        ("ServiceMonitor", "rag"),
        ("PrometheusRule", "rag"),
    ]:
        child = helper.get(kind, name)
        assert child is not None, (kind, name)
        assert child["metadata"]["ownerReferences"][0]["uid"] == uid
        assert child["metadata"]["labels"]["app.kubernetes.io/instance"] == "rag"
    deployment = helper.get("Deployment", "rag-blue")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == SPEC["image"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert {e["name"] for e in container["env"]} == {"DATABASE_URL", "API_KEYS"}
    config_map = helper.config_map_of("rag-blue")
    assert config_map is not None and config_map["metadata"]["ownerReferences"][0]["uid"] == uid
    config = config_map["data"]
    assert config["RATE_LIMIT_RPS"] == "50" and config["ALLOWED_ORIGINS"] == "https://app.example"
    assert helper.get("Service", "rag")["spec"]["selector"]["ragcorp.dev/color"] == "blue"
    status = helper.status("rag")
    assert (status["phase"], status["activeColor"], status["activeImage"]) == ("Idle", "blue", SPEC["image"])
    assert status["schemaRevision"] == "0002"
    assert helper.condition("rag", "MigrationsApplied")["status"] == "True"
    assert helper.condition("rag", "Degraded")["status"] == "False"


def test_deployment_waits_for_the_migration(helper: ClusterHelper, operator: object) -> None:
    secrets(helper)
    helper.apply_resource("rag", SPEC)
    eventually(lambda: helper.get("Job", "rag-migrate-1"))
    eventually(lambda: helper.status("rag").get("phase") == "Migrating")
    assert helper.get("Deployment", "rag-blue") is None


def test_failed_migration_degrades_without_deploying(helper: ClusterHelper, operator: object) -> None:
    secrets(helper)
    helper.apply_resource("rag", SPEC)
    eventually(lambda: helper.get("Job", "rag-migrate-1"))
    helper.finish_job("rag-migrate-1", succeeded=False)
    degraded = eventually(
        lambda: helper.condition("rag", "Degraded").get("status") == "True" and helper.condition("rag", "Degraded")
    )
    assert degraded["reason"] == "MigrationFailed"
    assert "backoff limit" in degraded["message"]
    assert helper.status("rag")["phase"] == "Aborted"
    assert helper.get("Deployment", "rag-blue") is None


def test_replicas_and_autoscaling_change_in_place_without_a_rollout(helper: ClusterHelper, operator: object) -> None:
    secrets(helper)
    deploy(helper)
    helper.apply_resource(
        "rag", {**SPEC, "replicas": 4, "autoscaling": {"enabled": True, "minReplicas": 4, "maxReplicas": 8}}
    )
    eventually(lambda: helper.get("HorizontalPodAutoscaler", "rag"))
    hpa = helper.get("HorizontalPodAutoscaler", "rag")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "rag-blue"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (4, 8)
    status = helper.status("rag")
    assert status["revision"] == 1 and status["activeColor"] == "blue"
    assert helper.get("Deployment", "rag-green") is None
    helper.apply_resource("rag", {**SPEC, "autoscaling": {"enabled": False}})
    eventually(lambda: helper.get("HorizontalPodAutoscaler", "rag") is None)
    eventually(lambda: helper.get("Deployment", "rag-blue")["spec"].get("replicas") == 2)


def test_a_config_change_rolls_out_blue_green_and_a_rollback_restores_the_old_config(
    helper: ClusterHelper, operator: object
) -> None:
    """A changed ConfigMap value is a new revision: green gets it, blue keeps serving with its own
    until the switch and keeps it afterwards, so an instant rollback brings the old config back."""
    secrets(helper)
    slow = {"blueGreen": {"scaleDownDelaySeconds": 3600}}
    deploy(helper, spec={**SPEC, "strategy": slow})
    helper.apply_resource("rag", {**SPEC, "strategy": slow, "config": {"rateLimitRps": 75}})
    eventually(lambda: helper.get("Job", "rag-migrate-2"))
    assert helper.config_map_of("rag-blue")["data"]["RATE_LIMIT_RPS"] == "50", "the serving colour is untouched"
    helper.finish_job("rag-migrate-2", succeeded=True)
    eventually(lambda: helper.get("Deployment", "rag-green"))
    assert helper.config_map_of("rag-green")["data"]["RATE_LIMIT_RPS"] == "75"
    helper.mark_deployment_ready("rag-green")
    eventually(lambda: helper.get("Job", "rag-smoke-2"))
    helper.finish_job("rag-smoke-2", succeeded=True)
    eventually(lambda: helper.selector_color("rag") == "green")
    assert helper.config_map_of("rag-blue")["data"]["RATE_LIMIT_RPS"] == "50", "the previous colour keeps its own"
    helper.annotate("rag", {"ragcorp.dev/rollback": "previous"})
    eventually(lambda: helper.selector_color("rag") == "blue")
    status = helper.status("rag")
    assert status["activeImage"] == SPEC["image"] and status["heldConfig"] == status["previousConfig"]
    assert helper.config_map_of("rag-blue")["data"]["RATE_LIMIT_RPS"] == "50"


def test_drift_is_repaired(helper: ClusterHelper, operator: object) -> None:
    secrets(helper)
    deploy(helper)
    helper.cluster.delete("Service", "default", "rag")
    config_map = helper.config_map_of("rag-blue")["metadata"]["name"]
    helper.cluster._call(
        "PATCH",
        helper.cluster._path("ConfigMap", "default", config_map),
        body={"data": {"LOG_LEVEL": "DEBUG"}},
        content_type="application/merge-patch+json",
    )
    eventually(lambda: helper.get("Service", "rag"))
    eventually(lambda: helper.get("ConfigMap", config_map)["data"]["LOG_LEVEL"] == "INFO")


def test_missing_secret_degrades_with_the_reason_and_recovers(helper: ClusterHelper, operator: object) -> None:
    helper.apply_resource("rag", SPEC)
    degraded = eventually(
        lambda: helper.condition("rag", "Degraded").get("status") == "True" and helper.condition("rag", "Degraded")
    )
    assert degraded["reason"] == "SecretNotFound"
    assert "default/db" in degraded["message"]
    assert helper.get("Job", "rag-migrate-1") is None
    secrets(helper)
    eventually(lambda: helper.get("Job", "rag-migrate-1"))


def test_invalid_spec_degrades_and_the_operator_keeps_running(helper: ClusterHelper, operator: object) -> None:
    secrets(helper)
    helper.apply_resource("bad", {**SPEC, "autoscaling": {"enabled": True, "minReplicas": 9, "maxReplicas": 3}})
    degraded = eventually(
        lambda: (
            helper.condition("bad", "Degraded").get("reason") == "InvalidSpec" and helper.condition("bad", "Degraded")
        )
    )
    assert "minReplicas must not exceed" in degraded["message"]
    deploy(helper, "good")


def test_an_invalid_edit_keeps_the_applied_spec_and_says_so_once(helper: ClusterHelper, operator: object) -> None:
    secrets(helper)
    deploy(helper)
    applied = helper.status("rag")["observedGeneration"]
    helper.apply_resource("rag", {**SPEC, "autoscaling": {"enabled": True, "minReplicas": 9, "maxReplicas": 3}})
    ready = eventually(
        lambda: helper.condition("rag", "Ready").get("reason") == "InvalidSpec" and helper.condition("rag", "Ready")
    )
    assert ready["status"] == "False" and "blue still serves" in ready["message"]
    assert helper.status("rag")["observedGeneration"] == applied, "the invalid generation was not applied"
    for attempt in range(3):  # more passes over the same problem: each edit of an annotation wakes the operator
        helper.annotate("rag", {"example.com/poke": str(attempt)})
        eventually(
            lambda attempt=attempt: (
                helper.resource("rag")["metadata"]["annotations"].get("example.com/poke") == str(attempt)
            )
        )
    time.sleep(1)
    assert [e["reason"] for e in helper.events("rag")].count("InvalidSpec") == 1, "one Event per distinct problem"
    assert helper.get("Deployment", "rag-blue")["spec"]["replicas"] == 2, "children keep the last good spec"
    helper.apply_resource("rag", {**SPEC, "autoscaling": {"enabled": False, "minReplicas": 1}})
    eventually(lambda: helper.condition("rag", "Ready").get("status") == "True")
    assert helper.status("rag")["observedGeneration"] > applied


def test_a_job_this_resource_did_not_make_is_replaced_not_trusted(helper: ClusterHelper, operator: object) -> None:
    """A leftover `rag-migrate-1` (from an earlier resource of the same name, or made by hand) that
    claims success must not count as this resource's migration."""
    secrets(helper)
    helper.cluster.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": "rag-migrate-1",
                "namespace": "default",
                "labels": {
                    "app.kubernetes.io/instance": "rag",
                    "ragcorp.dev/revision": "1",
                    "ragcorp.dev/job": "migrate",
                },
            },
            "spec": {"template": {"spec": {"containers": [{"name": "migrate", "image": "old:1"}]}}},
        }
    )
    helper.finish_job("rag-migrate-1", succeeded=True, schema_revision="0099")
    helper.apply_resource("rag", SPEC)
    uid = eventually(lambda: helper.resource("rag")["metadata"].get("uid"))
    job = eventually(
        lambda: (
            (found := helper.get("Job", "rag-migrate-1"))
            and found["metadata"].get("ownerReferences", [{}])[0].get("uid") == uid
            and found
        )
    )
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == SPEC["image"]
    assert helper.status("rag")["phase"] == "Migrating" and not helper.status("rag").get("schemaRevision")


def test_a_name_too_long_for_the_childrens_names_degrades_without_children(
    helper: ClusterHelper, operator: object
) -> None:
    """The CRD refuses such a name; a cluster with an older CRD still gets a clear condition."""
    secrets(helper)
    name = "r" * 47
    helper.apply_resource(name, SPEC)
    degraded = eventually(
        lambda: helper.condition(name, "Degraded").get("reason") == "InvalidSpec" and helper.condition(name, "Degraded")
    )
    assert "at most 46 characters" in degraded["message"]
    assert helper.get("Service", name) is None and helper.get("Job", f"{name}-migrate-1") is None


def test_deleting_the_resource_removes_its_children(helper: ClusterHelper, operator: object) -> None:
    secrets(helper)
    deploy(helper)
    config_map = helper.config_map_of("rag-blue")["metadata"]["name"]
    helper.delete_resource("rag")
    eventually(lambda: helper.resource("rag") is None)
    for kind, name in [("Deployment", "rag-blue"), ("Service", "rag"), ("ConfigMap", config_map)]:
        eventually(lambda kind=kind, name=name: helper.get(kind, name) is None)


def test_image_change_rolls_out_blue_to_green_after_migrating(helper: ClusterHelper, operator: object) -> None:
    secrets(helper)
    deploy(helper, spec={**SPEC, "strategy": {"blueGreen": {"scaleDownDelaySeconds": 0}}})
    helper.apply_resource(
        "rag",
        {**SPEC, "image": "registry.example/ragcorp:2.0", "strategy": {"blueGreen": {"scaleDownDelaySeconds": 0}}},
    )
    eventually(lambda: helper.get("Job", "rag-migrate-2"))
    assert helper.get("Deployment", "rag-green") is None  # nothing deploys before the schema is migrated
    assert helper.get("Service", "rag")["spec"]["selector"]["ragcorp.dev/color"] == "blue"
    helper.finish_job("rag-migrate-2", succeeded=True, schema_revision="0003")
    eventually(lambda: helper.get("Deployment", "rag-green"))
    assert helper.get("Service", "rag")["spec"]["selector"]["ragcorp.dev/color"] == "blue"
    helper.mark_deployment_ready("rag-green")
    eventually(lambda: helper.get("Job", "rag-smoke-2"))
    assert helper.get("Service", "rag-preview")["spec"]["selector"]["ragcorp.dev/color"] == "green"
    assert helper.get("Service", "rag")["spec"]["selector"]["ragcorp.dev/color"] == "blue"
    helper.finish_job("rag-smoke-2", succeeded=True)
    eventually(lambda: helper.get("Service", "rag")["spec"]["selector"]["ragcorp.dev/color"] == "green")
    eventually(lambda: helper.status("rag").get("phase") == "Idle")
    status = helper.status("rag")
    assert (status["activeImage"], status["schemaRevision"], status["revision"]) == (
        "registry.example/ragcorp:2.0",
        "0003",
        2,
    )
    eventually(lambda: helper.get("Deployment", "rag-blue")["spec"]["replicas"] == 0)


def scraped(port: int, name: str, labels: dict[str, str] | None = None) -> float:
    """One sample of what Prometheus would scrape from the operator's metrics port (0 when absent)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in (labels or {}).items()):
                return found.value
    return 0.0


def test_reconciles_are_counted_on_the_operators_metrics_port(
    helper: ClusterHelper, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What Prometheus scrapes from the operator: passes by outcome, and their durations."""
    port = free_port()
    monkeypatch.setenv("RAGCORP_OPERATOR_METRICS_PORT", str(port))

    def count(outcome: str) -> float:
        return scraped(port, "ragcorp_operator_reconciles_total", {"name": "counted", "outcome": outcome})

    with running_operator():
        helper.apply_resource("counted", SPEC)  # no Secrets yet: degraded passes
        eventually(lambda: count("degraded") >= 2)
        secrets(helper)
        eventually(lambda: count("ok") >= 1)
        assert scraped(port, "ragcorp_operator_reconcile_duration_seconds_count") >= 3
        assert count("error") == 0


def test_a_rollouts_phase_its_time_per_phase_and_its_abort_reason_are_on_the_metrics_port(
    helper: ClusterHelper, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollout dashboard's figures: the phase gauge follows the rollout, leaving a phase times
    it, and an abort is counted by its reason."""
    port = free_port()
    monkeypatch.setenv("RAGCORP_OPERATOR_METRICS_PORT", str(port))

    def phase(name: str) -> float:
        return scraped(port, "ragcorp_operator_rollout_phase", {"name": "rag", "phase": name})

    with running_operator():
        secrets(helper)
        deploy(helper)
        eventually(lambda: phase("Idle") == 1)
        assert phase("Migrating") == 0
        roll_to_v2(helper)
        migrate_deploy_and_smoke(helper, smoke_passes=False)
        eventually(lambda: phase("Aborted") == 1)
        assert phase("Idle") == 0
        aborted = {"name": "rag", "reason": "SmokeTestFailed"}
        assert scraped(port, "ragcorp_operator_aborts_total", aborted) == 1
        assert scraped(port, "ragcorp_operator_phase_duration_seconds_count", {"phase": "Migrating"}) >= 1
        assert scraped(port, "ragcorp_operator_rollbacks_total", {"name": "rag"}) == 0


def test_a_child_name_held_by_someone_else_s_object_is_left_alone_and_reported(
    helper: ClusterHelper, operator: object
) -> None:
    """A Service made by hand where the preview Service would go: not adopted, not rewritten; the
    resource says why in Degraded, and the operator takes the name once it is free."""
    secrets(helper)
    theirs = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "rag-preview", "namespace": NAMESPACE, "labels": {"app": "someone-else"}},
        "spec": {"selector": {"app": "someone-else"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    helper.cluster.apply(theirs)
    helper.apply_resource("rag", SPEC)
    degraded = eventually(
        lambda: (
            helper.condition("rag", "Degraded").get("reason") == "ChildNotOwned" and helper.condition("rag", "Degraded")
        )
    )
    assert "Service default/rag-preview exists and belongs to nobody" in degraded["message"]
    assert helper.get("Service", "rag") is not None, "the other children are written"
    kept = helper.get("Service", "rag-preview")
    assert kept["spec"]["selector"] == {"app": "someone-else"} and not kept["metadata"].get("ownerReferences")
    helper.cluster.delete("Service", NAMESPACE, "rag-preview")
    eventually(lambda: (helper.get("Service", "rag-preview") or {}).get("metadata", {}).get("ownerReferences"))
    eventually(lambda: helper.condition("rag", "Degraded").get("reason") != "ChildNotOwned")


def test_after_an_uninstall_a_deleted_resource_is_not_stuck_on_the_operators_finalizer(
    helper: ClusterHelper, kubeconfig: object
) -> None:
    """The chart's post-delete hook runs `ragcorp-operator release-finalizers`: with no operator left,
    a resource (or its namespace) deleted later would otherwise stay Terminating for ever."""
    secrets(helper)
    with running_operator():
        helper.apply_resource("rag", SPEC)
        eventually(lambda: FINALIZER in ((helper.resource("rag") or {}).get("metadata", {}).get("finalizers") or []))
    assert helper.cluster.release_finalizer(FINALIZER) == [f"{NAMESPACE}/rag"]
    assert FINALIZER not in (helper.resource("rag") or {}).get("metadata", {}).get("finalizers", [])
    assert helper.cluster.release_finalizer(FINALIZER) == [], "nothing left to release"
    helper.delete_resource("rag")
    eventually(lambda: helper.resource("rag") is None)
