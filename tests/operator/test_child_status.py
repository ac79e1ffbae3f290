"""Reading Jobs: each kind is judged by what its real command leaves behind (pure, no cluster).

The termination messages are the ones the real commands wrote on the local cluster
(`termination_messages.json`, checked there by tests/e2e/cluster).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ragcorp_operator.child_status import job_state, needs_pods
from ragcorp_operator.rollout import JobKind
from tests.support.termination_messages import RECORDED_REVISION, TERMINATION_MESSAGES

COMPLETE = {
    "succeeded": 1,
    "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}],
}
FAILED = {
    "failed": 1,
    "conditions": [
        {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"},
        {
            "type": "Failed",
            "status": "True",
            "reason": "BackoffLimitExceeded",
            "message": "Job has reached the specified backoff limit",
        },
    ],
}


def job(status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "rag-x-2"}, "status": status}


def pod(message: str, exit_code: int = 0) -> dict[str, Any]:
    terminated: dict[str, Any] = {"exitCode": exit_code}
    if message:  # the kubelet leaves the field out when the file is empty
        terminated["message"] = message
    return {"status": {"containerStatuses": [{"name": "api", "state": {"terminated": terminated}}]}}


@pytest.mark.parametrize(
    ("kind", "message", "revision"),
    [
        ("migrate", TERMINATION_MESSAGES["migrate"], RECORDED_REVISION),
        ("downgrade", TERMINATION_MESSAGES["downgrade"], RECORDED_REVISION),
        ("smoke", TERMINATION_MESSAGES["smoke-passed"], None),
        ("backup", TERMINATION_MESSAGES["backup"], None),
    ],
)
def test_each_kind_succeeds_on_what_its_command_reports(kind: JobKind, message: str, revision: str | None) -> None:
    state = job_state(kind, job(COMPLETE), [pod(message)], created_before=True)
    assert (state.phase, state.schema_revision) == ("succeeded", revision)


def test_a_migration_that_reports_no_revision_is_not_trusted() -> None:
    for kind in ("migrate", "downgrade"):
        state = job_state(kind, job(COMPLETE), [pod(TERMINATION_MESSAGES["backup"])], created_before=True)
        assert state.phase == "failed" and "no schema revision" in state.message


def test_a_failed_smoke_test_says_why() -> None:
    state = job_state("smoke", job(FAILED), [pod(TERMINATION_MESSAGES["smoke-failed"], 1)], created_before=True)
    assert state.phase == "failed"
    assert state.message.startswith("BackoffLimitExceeded: Job has reached the specified backoff limit")
    assert "/v1/ask answered 500" in state.message


def test_running_missing_and_vanished_jobs() -> None:
    assert job_state("smoke", job({"active": 1}), [], created_before=True).phase == "running"
    assert job_state("migrate", None, [], created_before=False).phase == "missing"
    vanished = job_state("migrate", None, [], created_before=True)
    assert vanished.phase == "failed" and "deleted before it finished" in vanished.message


def test_pods_are_read_only_where_a_report_matters() -> None:
    assert needs_pods("migrate", job(COMPLETE)) and needs_pods("downgrade", job(COMPLETE))
    assert needs_pods("smoke", job(FAILED))
    assert not needs_pods("smoke", job(COMPLETE)) and not needs_pods("backup", job(COMPLETE))
    assert not needs_pods("migrate", job({"active": 1})) and not needs_pods("migrate", None)


def _as_the_api_server_stores(job: dict[str, Any]) -> dict[str, Any]:
    """What a kube-apiserver returns for a Job it stored: quantities in canonical form (`1024Mi` is
    read back as `1Gi`, `1000m` CPU as `1`), defaults filled in, then the Job finished."""
    stored = copy.deepcopy(job)
    for container in stored["spec"]["template"]["spec"]["containers"]:
        for amounts in (container.get("resources") or {}).values():
            for name, quantity in amounts.items():
                amounts[name] = {"1024Mi": "1Gi", "1000m": "1", "0.5": "500m"}.get(str(quantity), quantity)
        container.setdefault("imagePullPolicy", "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
    stored["spec"].update(completions=1, parallelism=1, suspend=False, completionMode="NonIndexed")
    stored["status"] = COMPLETE
    return stored


def test_a_finished_job_is_recognised_after_the_server_canonicalised_its_quantities() -> None:
    """Compared as stored, the smoke Job would look changed, be replaced, and the rollout abort."""
    from ragcorp_operator.child_status import job_is_as_asked
    from ragcorp_operator.cluster import is_subset
    from ragcorp_operator.plan import render_job
    from ragcorp_operator.render.common import Owner
    from ragcorp_operator.rollout import JobIntent
    from ragcorp_operator.spec import parse_spec

    spec = parse_spec(
        {
            "image": "ragcorp:2",
            "secrets": {"databaseUrl": {"name": "db", "key": "url"}},
            "resources": {
                "requests": {"cpu": "1000m", "memory": "1024Mi"},
                "limits": {"cpu": "1000m", "memory": "1024Mi"},
            },
        }
    )
    desired = render_job(Owner("rag", "prod", "uid-1"), spec, JobIntent("smoke", 2, "ragcorp:2", "0002"))
    stored = _as_the_api_server_stores(desired)
    assert stored["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "1Gi"
    assert is_subset(desired, stored), "quantities compare by value: 1024Mi is the stored 1Gi"
    assert job_is_as_asked(desired, stored)
    other_image = render_job(Owner("rag", "prod", "uid-1"), spec, JobIntent("smoke", 2, "ragcorp:3", "0002"))
    assert not job_is_as_asked(other_image, stored)


def _owned(kind: str, name: str) -> dict[str, Any]:
    return {"metadata": {"ownerReferences": [{"kind": kind, "name": name, "uid": "u"}], "labels": {}}}


def test_whose_object_a_child_name_holds() -> None:
    """RCD `x-preview`'s active Service and RCD `x`'s preview Service share a name: neither adopts the other's."""
    from ragcorp_operator.child_status import foreign_owner

    desired = {"metadata": {"labels": {"app.kubernetes.io/instance": "x"}}}
    assert foreign_owner(desired, _owned("RagCorpDeployment", "x")) is None  # ours (or our earlier self)
    assert foreign_owner(desired, _owned("RagCorpDeployment", "x-preview")) == "RagCorpDeployment x-preview"
    assert foreign_owner(desired, _owned("HelmRelease", "web")) == "HelmRelease web"
    rendered = {"metadata": {"labels": {"app.kubernetes.io/instance": "x"}}}  # `render | kubectl apply`
    assert foreign_owner(desired, rendered) is None
    assert foreign_owner(desired, {"metadata": {"labels": {"app": "web"}}}) == "nobody (made outside the operator)"
