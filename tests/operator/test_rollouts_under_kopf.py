"""Blue/green rollouts end to end through the real kopf runtime and the emulator.

The helper decides every Job's and Deployment's fate, as the cluster would;
the assertions are what a platform team watches: which colour serves, which
Jobs ran in which order, and what the status says.
"""

from __future__ import annotations

import time

import pytest

from tests.support.kube_emulator import ApiServer
from tests.support.operator_cluster import (
    SPEC,
    V2,
    ClusterHelper,
    deploy,
    image_of,
    migrate_deploy_and_smoke,
    promote_v2,
    promote_v2_while_blue_still_serves,
    replicas_of,
    roll_to_v2,
    running_operator,
    secrets,
    spec,
)
from tests.support.waiting import eventually


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
    fast = {"scaleDownDelaySeconds": 0, "readyTimeoutSeconds": 2, "abortScaleDownDelaySeconds": 1}
    roll_to_v2(helper, strategy={"blueGreen": fast})
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
    eventually(lambda: helper.get("Deployment", "rag-green") is None)  # the standby goes after its linger
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
    # A migration is never cut off halfway: the abort waits for it, then takes effect.
    eventually(lambda: helper.status("rag").get("abortRequested") is True)
    assert helper.status("rag")["phase"] == "Migrating"
    helper.finish_job("rag-migrate-3", succeeded=True, schema_revision="0004")
    eventually(lambda: helper.condition("rag", "Degraded").get("reason") == "ManualAbort")
    assert helper.status("rag")["schemaRevision"] == "0004", "the schema the finished migration left"
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
    assert kubectl_ragcorp(["-n", "default", "get", "rag"]) == 0
    tree = capsys.readouterr().out.splitlines()
    rows = [line.lstrip("│├└─ ").split() for line in tree[tree.index(next(r for r in tree if r.startswith("NAME"))) :]]
    assert rows[2][:4] == ["rag-blue", "(blue)", "Deployment", "previous"] and "2/2" in rows[2]
    assert rows[3][:4] == ["rag-green", "(green)", "Deployment", "active"]
    assert rows[5][:3] == ["rag-migrate-2", "Job", "Succeeded"], "newest revision's Jobs first"
    assert kubectl_ragcorp(["-n", "default", "undo", "rag", "--to-revision", "1"]) == 0  # rollback, as kubectl says it
    eventually(lambda: helper.selector_color("rag") == "blue")
    assert kubectl_ragcorp(["-n", "default", "status", "missing"]) == 1


def test_traffic_does_not_move_while_the_status_cannot_be_written(
    helper: ClusterHelper, api_server: ApiServer, operator: object
) -> None:
    """Children never run ahead of the status: a promotion whose status write is refused (409)
    switches nothing, and happens once the write lands."""
    secrets(helper)
    deploy(helper, spec=spec())
    roll_to_v2(helper, strategy={"blueGreen": {"autoPromote": False, "scaleDownDelaySeconds": 3600}})
    migrate_deploy_and_smoke(helper, smoke_passes=True)
    eventually(lambda: helper.status("rag").get("phase") == "Promoting")
    api_server.refuse_status_writes = True
    helper.annotate("rag", {"ragcorp.dev/promote": "first"})
    time.sleep(2)
    assert helper.selector_color("rag") == "blue" and helper.status("rag")["phase"] == "Promoting"
    api_server.refuse_status_writes = False
    helper.annotate("rag", {"example.com/poke": "1"})  # any event: the reconciler tries again at once
    eventually(lambda: helper.selector_color("rag") == "green")
    assert helper.status("rag")["phase"] == "ScalingDown"
    eventually(lambda: "ragcorp.dev/promote" not in helper.annotations("rag"))


def test_a_missing_monitoring_secret_does_not_freeze_a_rollouts_timeout(
    helper: ClusterHelper, operator: object
) -> None:
    secrets(helper)
    deploy(helper, spec=spec())
    strategy = {"blueGreen": {"scaleDownDelaySeconds": 0, "readyTimeoutSeconds": 2}}
    monitoring = {"metricsKey": {"name": "prometheus-key", "key": "key"}}
    roll_to_v2(helper, strategy=strategy, monitoring=monitoring)
    eventually(lambda: helper.get("Job", "rag-migrate-2"))
    helper.finish_job("rag-migrate-2", succeeded=True, schema_revision="0003")
    eventually(lambda: helper.condition("rag", "Degraded").get("reason") == "SecretNotFound")
    # green never turns ready: the ready timeout still fires, the Secret notwithstanding
    eventually(lambda: helper.status("rag").get("phase") == "Aborted")
    assert helper.status("rag")["failure"]["reason"] == "NotReady"
    assert helper.selector_color("rag") == "blue"


def test_kubectl_ragcorp_pause_holds_a_rollout_and_resume_lets_it_go_on(
    helper: ClusterHelper, operator: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from ragcorp_operator.kubectl_plugin import main as kubectl_ragcorp

    secrets(helper)
    deploy(helper, spec=spec())
    roll_to_v2(helper)
    eventually(lambda: helper.get("Job", "rag-migrate-2"))
    assert kubectl_ragcorp(["-n", "default", "pause", "rag"]) == 0
    eventually(lambda: helper.condition("rag", "Progressing").get("reason") == "RolloutPaused")
    helper.finish_job("rag-migrate-2", succeeded=True, schema_revision="0003")  # the Job finishes on its own
    helper.annotate("rag", {"ragcorp.dev/promote": "early"})
    eventually(lambda: "ragcorp.dev/promote" not in helper.annotations("rag"))  # declined, not kept
    assert helper.status("rag")["phase"] == "Migrating" and helper.status("rag")["pausedAt"]
    assert kubectl_ragcorp(["-n", "default", "status", "rag"]) == 0
    assert "Paused:      yes, since" in capsys.readouterr().out
    assert kubectl_ragcorp(["-n", "default", "resume", "rag"]) == 0
    eventually(lambda: image_of(helper, "rag-green") == V2)
    assert helper.status("rag")["phase"] == "Deploying" and not helper.status("rag").get("pausedAt")


def test_a_pipeline_sets_the_image_and_waits_with_kubectl_ragcorp_status_timeout(
    helper: ClusterHelper, operator: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """`set image` then `status --timeout`: 0 once Healthy, 1 on Degraded or when time runs out."""
    from ragcorp_operator.kubectl_plugin import main as kubectl_ragcorp

    secrets(helper)
    deploy(helper, spec=spec(strategy={"blueGreen": {"scaleDownDelaySeconds": 0}}))
    assert kubectl_ragcorp(["-n", "default", "status", "rag", "--timeout", "30s"]) == 0
    assert capsys.readouterr().out.startswith("Healthy: blue serves")
    assert kubectl_ragcorp(["-n", "default", "set", "image", "rag", V2]) == 0
    assert kubectl_ragcorp(["-n", "default", "status", "rag", "--timeout", "1s"]) == 1  # the migration runs
    waited = capsys.readouterr()
    assert "Progressing: " in waited.out and "timed out after 1 s while Progressing" in waited.err
    migrate_deploy_and_smoke(helper, smoke_passes=False)
    assert kubectl_ragcorp(["-n", "default", "status", "rag", "--timeout", "30s"]) == 1
    assert "Degraded: SmokeTestFailed" in capsys.readouterr().out
    assert helper.status("rag")["activeImage"] == SPEC["image"]


def test_kubectl_ragcorp_get_watch_draws_the_tree_again_on_each_change(
    helper: ClusterHelper, operator: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """`get --watch` redraws when the rollout moves (here: v2's migration Job appears) and stops,
    saying so, when the resource is deleted."""
    import threading

    from ragcorp_operator.kubectl_plugin import main as kubectl_ragcorp

    secrets(helper)
    deploy(helper)
    exits: list[int] = []
    watcher = threading.Thread(target=lambda: exits.append(kubectl_ragcorp(["-n", "default", "get", "rag", "-w"])))
    watcher.start()
    eventually(lambda: "rag-smoke-1" in capsys.readouterr().out)
    roll_to_v2(helper)
    eventually(lambda: helper.get("Job", "rag-migrate-2"))
    time.sleep(2.5)  # one poll of the watch
    helper.delete_resource("rag")
    watcher.join(timeout=30)
    out = capsys.readouterr()
    assert exits == [1] and "ragcorpdeployment default/rag is gone" in out.err
    assert "rag-migrate-2" in out.out and "\n--- " in out.out, "redrawn after the change"
