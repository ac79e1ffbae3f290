"""Blue/green rollouts end to end through the real kopf runtime and the emulator.

The helper decides every Job's and Deployment's fate, as the cluster would;
the assertions are what a platform team watches: which colour serves, which
Jobs ran in which order, and what the status says.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.operator.cluster_helper import ClusterHelper, eventually
from tests.operator.conftest import running_operator
from tests.operator.test_reconcile import SPEC, deploy, secrets

V2 = "registry.example/ragcorp:2.0"
FAST = {"blueGreen": {"scaleDownDelaySeconds": 0}}


def spec(**changes: Any) -> dict[str, Any]:
    return {**SPEC, "strategy": FAST, **changes}


def image_of(helper: ClusterHelper, deployment: str) -> str | None:
    found = helper.get("Deployment", deployment)
    return found["spec"]["template"]["spec"]["containers"][0]["image"] if found else None


def replicas_of(helper: ClusterHelper, deployment: str) -> int | None:
    found = helper.get("Deployment", deployment)
    return found["spec"].get("replicas") if found else None


def roll_to_v2(helper: ClusterHelper, **changes: Any) -> None:
    helper.apply_resource("rag", spec(image=V2, **changes))


def migrate_deploy_and_smoke(
    helper: ClusterHelper, smoke_passes: bool, revision: int = 2, schema: str = "0003"
) -> None:
    """Play the cluster through one rollout to green: migration succeeds, green turns ready, smoke test ends."""
    eventually(lambda: helper.get("Job", f"rag-migrate-{revision}"))
    helper.finish_job(f"rag-migrate-{revision}", succeeded=True, schema_revision=schema)
    eventually(lambda: helper.get("Deployment", "rag-green"))
    helper.mark_deployment_ready("rag-green")
    eventually(lambda: helper.get("Job", f"rag-smoke-{revision}"))
    helper.finish_job(f"rag-smoke-{revision}", succeeded=smoke_passes)


def promote_v2(helper: ClusterHelper) -> None:
    migrate_deploy_and_smoke(helper, smoke_passes=True)
    eventually(lambda: helper.selector_color("rag") == "green")


def promote_v2_while_blue_still_serves(helper: ClusterHelper) -> None:
    """v1 on blue, then v2 promoted to green with blue kept serving (a long scale-down delay)."""
    secrets(helper)
    slow = {"blueGreen": {"scaleDownDelaySeconds": 3600}}
    deploy(helper, spec=spec(strategy=slow))
    roll_to_v2(helper, strategy=slow)
    promote_v2(helper)
    eventually(lambda: helper.status("rag").get("phase") == "ScalingDown")


def test_backup_then_migrate_then_deploy_then_switch(helper: ClusterHelper, operator: object) -> None:
    secrets(helper)
    backups = {"enabled": True, "pvcName": "backups", "retention": 3}
    deploy(helper, spec=spec(migrations={"backup": backups}))
    roll_to_v2(helper, migrations={"backup": backups})
    backup = eventually(lambda: helper.get("Job", "rag-backup-2"))
    assert backup["spec"]["template"]["spec"]["volumes"][-1]["persistentVolumeClaim"]["claimName"] == "backups"
    assert helper.get("Job", "rag-migrate-2") is None  # nothing changes before the backup succeeded
    helper.finish_job("rag-backup-2", succeeded=True)
    promote_v2(helper)
    eventually(lambda: helper.status("rag").get("phase") == "Idle")
    status = helper.status("rag")
    assert (status["activeColor"], status["activeImage"], status["schemaRevision"]) == ("green", V2, "0003")
    assert [h["outcome"] for h in status["history"]] == ["promoted", "promoted"]
    assert helper.condition("rag", "Ready")["status"] == "True"
    eventually(lambda: replicas_of(helper, "rag-blue") == 0)


@pytest.mark.parametrize("step", ["migrate", "smoke", "ready"])
def test_a_failure_at_any_step_keeps_traffic_on_the_old_colour(
    helper: ClusterHelper, operator: object, step: str
) -> None:
    secrets(helper)
    deploy(helper, spec=spec())
    roll_to_v2(helper, strategy={"blueGreen": {"scaleDownDelaySeconds": 0, "readyTimeoutSeconds": 2}})
    eventually(lambda: helper.get("Job", "rag-migrate-2"))
    helper.finish_job("rag-migrate-2", succeeded=step != "migrate", schema_revision="0003")
    if step != "migrate":
        eventually(lambda: helper.get("Deployment", "rag-green"))
        if step == "smoke":
            helper.mark_deployment_ready("rag-green")
            eventually(lambda: helper.get("Job", "rag-smoke-2"))
            helper.finish_job("rag-smoke-2", succeeded=False)
    reasons = {"migrate": "MigrationFailed", "smoke": "SmokeTestFailed", "ready": "NotReady"}
    degraded = eventually(
        lambda: (
            helper.condition("rag", "Degraded").get("reason") == reasons[step] and helper.condition("rag", "Degraded")
        )
    )
    assert degraded["status"] == "True"
    status = helper.status("rag")
    assert (status["phase"], status["activeColor"], status["activeImage"]) == ("Aborted", "blue", SPEC["image"])
    assert status["history"][-1]["outcome"] == "aborted"
    assert helper.selector_color("rag") == "blue"
    eventually(lambda: helper.get("Deployment", "rag-green") is None)  # the standby is scaled away
    assert helper.get("Job", "rag-migrate-3") is None  # and nothing retries by itself


def test_abort_downgrades_the_schema_with_the_new_image(helper: ClusterHelper, operator: object) -> None:
    secrets(helper)
    deploy(helper, spec=spec(migrations={"downgradeOnAbort": True}))
    roll_to_v2(helper, migrations={"downgradeOnAbort": True})
    migrate_deploy_and_smoke(helper, smoke_passes=False)
    downgrade = eventually(lambda: helper.get("Job", "rag-downgrade-2"))
    container = downgrade["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == V2
    assert container["command"] == ["ragcorp-service", "db", "downgrade", "0002"]
    helper.finish_job("rag-downgrade-2", succeeded=True, schema_revision="0002")
    eventually(lambda: helper.status("rag").get("phase") == "Aborted")
    assert helper.status("rag")["schemaRevision"] == "0002"
    assert helper.selector_color("rag") == "blue"


def test_a_new_image_supersedes_a_rollout_in_flight(helper: ClusterHelper, operator: object) -> None:
    secrets(helper)
    deploy(helper, spec=spec())
    roll_to_v2(helper)
    eventually(lambda: helper.get("Job", "rag-migrate-2"))
    helper.apply_resource("rag", spec(image="registry.example/ragcorp:3.0"))
    eventually(lambda: helper.get("Job", "rag-migrate-3"))
    eventually(lambda: helper.status("rag").get("targetImage") == "registry.example/ragcorp:3.0")
    eventually(lambda: helper.get("Job", "rag-migrate-2") is None)  # never two migrations at once
    helper.finish_job("rag-migrate-3", succeeded=True, schema_revision="0004")
    eventually(lambda: image_of(helper, "rag-green") == "registry.example/ragcorp:3.0")
    assert helper.status("rag")["history"][-1]["outcome"] == "superseded"


def test_manual_promote_and_abort_by_annotation(helper: ClusterHelper, operator: object) -> None:
    secrets(helper)
    manual = {"blueGreen": {"autoPromote": False, "scaleDownDelaySeconds": 0}}
    deploy(helper, spec=spec())
    helper.apply_resource("rag", spec(image=V2, strategy=manual))
    migrate_deploy_and_smoke(helper, smoke_passes=True)
    eventually(lambda: helper.status("rag").get("phase") == "Promoting")
    assert helper.selector_color("rag") == "blue" and helper.selector_color("rag-preview") == "green"
    helper.annotate("rag", {"ragcorp.dev/promote": "true"})
    eventually(lambda: helper.selector_color("rag") == "green")
    eventually(lambda: "ragcorp.dev/promote" not in helper.annotations("rag"))  # one-shot: cleared when done

    helper.apply_resource("rag", spec(image="registry.example/ragcorp:3.0", strategy=manual))
    eventually(lambda: helper.get("Job", "rag-migrate-3"))
    helper.annotate("rag", {"ragcorp.dev/abort": "true"})
    eventually(lambda: helper.condition("rag", "Degraded").get("reason") == "ManualAbort")
    assert helper.selector_color("rag") == "green"


def test_instant_rollback_by_annotation_and_rollback_after_scale_down_by_spec(
    helper: ClusterHelper, operator: object
) -> None:
    promote_v2_while_blue_still_serves(helper)
    helper.annotate("rag", {"ragcorp.dev/rollback": "previous"})
    eventually(lambda: helper.selector_color("rag") == "blue")  # instant: no Job ran first
    downgrade = eventually(lambda: helper.get("Job", "rag-downgrade-3"))
    assert downgrade["spec"]["template"]["spec"]["containers"][0]["image"] == V2
    helper.finish_job("rag-downgrade-3", succeeded=True, schema_revision="0002")
    eventually(lambda: helper.status("rag").get("schemaRevision") == "0002")
    status = helper.status("rag")
    assert status["activeImage"] == SPEC["image"] and status["history"][-1]["outcome"] == "rolledBack"

    # Forward again with a new image, let the old colour scale away, then roll back by spec.
    helper.apply_resource("rag", spec(image="registry.example/ragcorp:3.0"))
    eventually(lambda: helper.get("Job", "rag-migrate-4"))
    helper.finish_job("rag-migrate-4", succeeded=True, schema_revision="0003")
    eventually(lambda: image_of(helper, "rag-green") == "registry.example/ragcorp:3.0")
    helper.mark_deployment_ready("rag-green")
    eventually(lambda: helper.get("Job", "rag-smoke-4"))
    helper.finish_job("rag-smoke-4", succeeded=True)
    eventually(lambda: helper.status("rag").get("phase") == "Idle")
    helper.apply_resource("rag", spec(image="registry.example/ragcorp:3.0", rollback={"toRevision": 3}))
    eventually(lambda: helper.get("Job", "rag-downgrade-5"))
    assert helper.selector_color("rag") == "green"  # traffic waits for the redeployed colour
    helper.finish_job("rag-downgrade-5", succeeded=True, schema_revision="0002")
    eventually(lambda: replicas_of(helper, "rag-blue") == 2)
    helper.mark_deployment_ready("rag-blue")
    eventually(lambda: helper.get("Job", "rag-smoke-5"))
    helper.finish_job("rag-smoke-5", succeeded=True)
    eventually(lambda: helper.selector_color("rag") == "blue")
    eventually(lambda: helper.status("rag").get("activeImage") == SPEC["image"])


def test_a_restarted_operator_resumes_without_repeating_a_step(helper: ClusterHelper, kubeconfig: object) -> None:
    secrets(helper)
    with running_operator():
        deploy(helper, spec=spec())
        roll_to_v2(helper)
        job = eventually(lambda: helper.get("Job", "rag-migrate-2"))
    helper.finish_job("rag-migrate-2", succeeded=True, schema_revision="0003")  # finishes while no operator runs
    with running_operator():
        eventually(lambda: helper.get("Deployment", "rag-green"))
        assert helper.get("Job", "rag-migrate-2")["metadata"]["uid"] == job["metadata"]["uid"]  # not re-run
        assert helper.get("Job", "rag-migrate-3") is None
        assert helper.status("rag")["revision"] == 2
        helper.mark_deployment_ready("rag-green")
        eventually(lambda: helper.get("Job", "rag-smoke-2"))
        helper.finish_job("rag-smoke-2", succeeded=True)
        eventually(lambda: helper.selector_color("rag") == "green")


def test_kubectl_plugin_shows_status_and_history_and_requests_a_rollback(
    helper: ClusterHelper, operator: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from ragcorp_operator.kubectl_plugin import main as kubectl_ragcorp

    promote_v2_while_blue_still_serves(helper)
    assert kubectl_ragcorp(["-n", "default", "status", "rag"]) == 0
    out = capsys.readouterr().out
    assert "Phase:       ScalingDown" in out and f"green  {V2}" in out and "Ready " in out
    assert kubectl_ragcorp(["-n", "default", "history", "rag"]) == 0
    history = capsys.readouterr().out.splitlines()
    assert history[1].split()[:2] == ["1", "promoted"] and history[2].split()[:2] == ["2", "promoted"]
    assert kubectl_ragcorp(["-n", "default", "rollback", "rag", "--to-revision", "1"]) == 0
    eventually(lambda: helper.selector_color("rag") == "blue")
    assert kubectl_ragcorp(["-n", "default", "status", "missing"]) == 1
